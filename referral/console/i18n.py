"""The console's words in Portuguese and English; each counsellor picks one."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "sign_in": {"pt": "Entrar", "en": "Sign in"},
    "sign_out": {"pt": "Sair", "en": "Sign out"},
    "name": {"pt": "Nome", "en": "Name"},
    "password": {"pt": "Palavra-passe", "en": "Password"},
    "bad_login": {"pt": "Nome ou palavra-passe errados, ou conta bloqueada por 15 minutos.",
                  "en": "Wrong name or password, or the account is locked for 15 minutes."},
    "queue": {"pt": "Fila", "en": "Queue"},
    "waiting": {"pt": "À espera", "en": "Waiting"},
    "my_cases": {"pt": "Os meus casos", "en": "My cases"},
    "open_cases": {"pt": "Casos abertos", "en": "Open cases"},
    "dashboard": {"pt": "Painel", "en": "Dashboard"},
    "no_cases": {"pt": "Nenhum caso à espera.", "en": "No one is waiting."},
    "claim": {"pt": "Assumir", "en": "Take case"},
    "claimed_by": {"pt": "Assumido por", "en": "Taken by"},
    "already_claimed": {"pt": "Este caso já foi assumido por {who}.", "en": "{who} has already taken this case."},
    "reply": {"pt": "Responder", "en": "Reply"},
    "send": {"pt": "Enviar", "en": "Send"},
    "note": {"pt": "Nota interna", "en": "Internal note"},
    "add_note": {"pt": "Guardar nota", "en": "Save note"},
    "close": {"pt": "Fechar caso", "en": "Close case"},
    "outcome": {"pt": "Resultado", "en": "Outcome"},
    "transfer": {"pt": "Transferir", "en": "Transfer"},
    "services": {"pt": "Serviços", "en": "Services"},
    "insert": {"pt": "Inserir na resposta", "en": "Insert into reply"},
    "canned": {"pt": "Respostas prontas", "en": "Canned replies"},
    "segments": {"pt": "segmentos SMS", "en": "SMS segments"},
    "window_warning": {"pt": "Fora da janela de 24 horas do WhatsApp: a mensagem pode não chegar.",
                       "en": "Outside WhatsApp's 24-hour window: the message may not be delivered."},
    "risk": {"pt": "Risco", "en": "Risk"},
    "language": {"pt": "Língua", "en": "Language"},
    "channel": {"pt": "Canal", "en": "Channel"},
    "wait": {"pt": "Espera", "en": "Waiting for"},
    "evidence": {"pt": "Sinais", "en": "Signs"},
    "consent": {"pt": "Consentimento", "en": "Consent"},
    "transcript": {"pt": "Conversa", "en": "Conversation"},
    "counsellors": {"pt": "Conselheiros", "en": "Counsellors"},
    "on_duty": {"pt": "De serviço", "en": "On duty"},
    "audit": {"pt": "Registo", "en": "Audit trail"},
    "forbidden": {"pt": "Não tem permissão para isto.", "en": "You are not allowed to do this."},
    # queue
    "all_open": {"pt": "Todos os abertos", "en": "All open"},
    "no_mine": {"pt": "Não tem casos assumidos.", "en": "You have no cases."},
    "no_open": {"pt": "Nenhum caso aberto.", "en": "No open cases."},
    "case": {"pt": "Caso", "en": "Case"},
    "status": {"pt": "Estado", "en": "Status"},
    "open_case": {"pt": "Abrir", "en": "Open"},
    "live": {"pt": "Ao vivo", "en": "Live"},
    "offline": {"pt": "Sem ligação: a tentar de novo…", "en": "Disconnected: retrying…"},
    "new_emergency": {"pt": "EMERGÊNCIA", "en": "EMERGENCY"},
    "sound_on": {"pt": "Ativar som", "en": "Turn sound on"},
    "sound_ready": {"pt": "Som ativo", "en": "Sound on"},
    "about_other": {"pt": "sobre outra pessoa", "en": "about someone else"},
    # case page
    "back_to_queue": {"pt": "Voltar à fila", "en": "Back to the queue"},
    "number": {"pt": "Número", "en": "Number"},
    "opened": {"pt": "Aberto", "en": "Opened"},
    "trigger": {"pt": "Motivo", "en": "Reason"},
    "not_claimed": {"pt": "Ninguém assumiu ainda.", "en": "Nobody has taken this case yet."},
    "you_have_it": {"pt": "O caso é seu.", "en": "This case is yours."},
    "closed_with": {"pt": "Fechado por {who}: {outcome}", "en": "Closed by {who}: {outcome}"},
    "erased": {"pt": "Os dados pessoais deste caso foram apagados.",
               "en": "This case's personal data has been erased."},
    "no_messages": {"pt": "Ainda sem mensagens.", "en": "No messages yet."},
    "reply_placeholder": {"pt": "Escreva a resposta…", "en": "Write your reply…"},
    "note_placeholder": {"pt": "Só os conselheiros veem esta nota.", "en": "Only counsellors see this note."},
    "characters": {"pt": "caracteres", "en": "characters"},
    "ucs2": {"pt": "acentos ou símbolos: 70 caracteres por SMS", "en": "accents or symbols: 70 characters per SMS"},
    "choose_canned": {"pt": "Escolher uma resposta pronta…", "en": "Choose a canned reply…"},
    "use": {"pt": "Usar", "en": "Use"},
    "province": {"pt": "Província", "en": "Province"},
    "type": {"pt": "Tipo", "en": "Type"},
    "any": {"pt": "Qualquer", "en": "Any"},
    "search": {"pt": "Procurar", "en": "Search"},
    "no_services": {"pt": "Nenhum serviço encontrado.", "en": "No service found."},
    "unverified": {"pt": "número não verificado", "en": "number not verified"},
    "transfer_to": {"pt": "Transferir para", "en": "Transfer to"},
    "back_to_waiting": {"pt": "De volta à fila de espera", "en": "Back to the waiting queue"},
    "close_note": {"pt": "Nota de fecho (opcional)", "en": "Closing note (optional)"},
    "choose_outcome": {"pt": "Escolher o resultado…", "en": "Choose the outcome…"},
    "case_changed": {"pt": "Este caso mudou.", "en": "This case has changed."},
    "reload": {"pt": "Recarregar", "en": "Reload"},
    "interface_language": {"pt": "Língua", "en": "Language"},
    # flash messages
    "claimed_ok": {"pt": "Assumiu o caso {id}.", "en": "You took case {id}."},
    "reply_sent": {"pt": "Resposta enviada.", "en": "Reply sent."},
    "note_saved": {"pt": "Nota guardada.", "en": "Note saved."},
    "transferred_to": {"pt": "Caso transferido para {who}.", "en": "Case transferred to {who}."},
    "transferred_back": {"pt": "Caso devolvido à fila de espera.", "en": "Case returned to the waiting queue."},
    "closed_ok": {"pt": "Caso fechado. O assistente retomou a conversa.",
                  "en": "Case closed. The assistant has taken the conversation back."},
    "closed_pending": {"pt": "Caso fechado. O assistente retoma a conversa assim que estiver disponível.",
                       "en": "Case closed. The assistant will take the conversation back as soon as it is reachable."},
    "case_not_found": {"pt": "O caso {id} não existe.", "en": "Case {id} does not exist."},
    "case_is_closed": {"pt": "Este caso já está fechado.", "en": "This case is already closed."},
    "not_your_case": {"pt": "Este caso é de {who}: só {who} ou um supervisor pode agir nele.",
                      "en": "This case belongs to {who}: only {who} or a supervisor can act on it."},
    "claim_first": {"pt": "Assuma o caso primeiro.", "en": "Take the case first."},
    "invalid_request": {"pt": "Não foi possível: {reason}", "en": "That did not work: {reason}"},
    # authors, statuses, levels, consent, channels, languages
    "author_person": {"pt": "Pessoa", "en": "Person"},
    "author_bot": {"pt": "Assistente", "en": "Assistant"},
    "author_counsellor": {"pt": "Conselheiro", "en": "Counsellor"},
    "author_note": {"pt": "Nota interna", "en": "Internal note"},
    "status_waiting": {"pt": "À espera", "en": "Waiting"},
    "status_claimed": {"pt": "Assumido", "en": "Taken"},
    "status_closed": {"pt": "Fechado", "en": "Closed"},
    "level_emergency": {"pt": "Emergência", "en": "Emergency"},
    "level_high": {"pt": "Alto", "en": "High"},
    "level_elevated": {"pt": "Elevado", "en": "Elevated"},
    "level_none": {"pt": "Pedido", "en": "Request"},
    "consent_given": {"pt": "Deu consentimento", "en": "Consent given"},
    "consent_requested": {"pt": "Pediu um conselheiro", "en": "Asked for a counsellor"},
    "consent_not_asked": {"pt": "Não perguntado (urgente ou criança)", "en": "Not asked (urgent or a child)"},
    "consent_": {"pt": "Desconhecido", "en": "Unknown"},
    "channel_sms": {"pt": "SMS", "en": "SMS"},
    "channel_whatsapp": {"pt": "WhatsApp", "en": "WhatsApp"},
    "lang_pt": {"pt": "Português", "en": "Portuguese"},
    "lang_en": {"pt": "Inglês", "en": "English"},
    "lang_fr": {"pt": "Francês", "en": "French"},
    "lang_sw": {"pt": "Suaíli", "en": "Swahili"},
    "outcome_referred_avrr": {"pt": "Encaminhado: retorno voluntário (AVRR)", "en": "Referred: voluntary return (AVRR)"},
    "outcome_referred_shelter": {"pt": "Encaminhado: abrigo", "en": "Referred: shelter"},
    "outcome_referred_police": {"pt": "Encaminhado: polícia", "en": "Referred: police"},
    "outcome_referred_child_protection": {"pt": "Encaminhado: proteção da criança",
                                          "en": "Referred: child protection"},
    "outcome_referred_health": {"pt": "Encaminhado: saúde", "en": "Referred: health"},
    "outcome_referred_legal": {"pt": "Encaminhado: apoio jurídico", "en": "Referred: legal aid"},
    "outcome_information_given": {"pt": "Informação dada", "en": "Information given"},
    "outcome_declined": {"pt": "Recusou ajuda", "en": "Declined help"},
    "outcome_unreachable": {"pt": "Sem contacto", "en": "Unreachable"},
    "outcome_not_a_case": {"pt": "Não era um caso", "en": "Not a case"},
    "service_office": {"pt": "Escritório", "en": "Office"},
    "service_helpline": {"pt": "Linha de apoio", "en": "Helpline"},
    "service_child_helpline": {"pt": "Linha para crianças", "en": "Child helpline"},
    "service_police": {"pt": "Polícia", "en": "Police"},
    "service_shelter": {"pt": "Abrigo", "en": "Shelter"},
    "service_health": {"pt": "Saúde", "en": "Health"},
    "service_legal_aid": {"pt": "Apoio jurídico", "en": "Legal aid"},
    "api_docs": {"pt": "API da consola", "en": "Console API"},
}


def _supervisor_words() -> dict[str, dict[str, str]]:
    # The supervisor pages keep their own words next to them; absent until that module exists.
    try:
        from referral.console.supervisor_words import WORDS as words
    except ModuleNotFoundError:
        return {}
    return words


WORDS.update(_supervisor_words())


def translator(language: str):
    """A function t(key, **values) for one interface language (English when unknown)."""
    language = language if language in ("pt", "en") else "en"

    def t(key: str, **values: str) -> str:
        text = WORDS.get(key, {}).get(language, key)
        return text.format(**values) if values else text

    return t
