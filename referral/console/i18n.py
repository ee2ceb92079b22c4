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
}


def translator(language: str):
    """A function t(key, **values) for one interface language (English when unknown)."""
    language = language if language in ("pt", "en") else "en"

    def t(key: str, **values: str) -> str:
        text = WORDS.get(key, {}).get(language, key)
        return text.format(**values) if values else text

    return t
