"""The PROVISION_AZURE opt-in that every paid or writing Azure step checks first."""

from __future__ import annotations

from contoso_chat.backends.settings import ConfigError, Settings


def opted_in(settings: Settings) -> bool:
    """True only when the learner set PROVISION_AZURE=true."""
    return settings.get("PROVISION_AZURE").strip().lower() == "true"


def require_opt_in(settings: Settings, what: str) -> None:
    """Raise a ConfigError naming the setting unless provisioning is opted in and a subscription is set."""
    if not opted_in(settings):
        raise ConfigError(f"{what} creates paid Azure resources or writes to them; set PROVISION_AZURE=true in .env "
                          "to opt in.")
    if not settings.get("AZURE_SUBSCRIPTION_ID"):
        raise ConfigError(f"{what} needs AZURE_SUBSCRIPTION_ID in .env (and `az login`).")
