"""The human referral queue (cases in Redis), the rota, hand-back to the bot, data erasure."""

from referral.queue import (
    OUTCOMES,
    PRIORITIES,
    AlreadyClaimed,
    Case,
    CaseClosed,
    CaseNotFound,
    NotYourCase,
    ReferralError,
    Referrals,
)

__all__ = [
    "OUTCOMES",
    "PRIORITIES",
    "AlreadyClaimed",
    "Case",
    "CaseClosed",
    "CaseNotFound",
    "NotYourCase",
    "ReferralError",
    "Referrals",
]
