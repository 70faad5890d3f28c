"""The account adapter: the site's say on who signs in and how users are created.

Name a subclass in ``FTAUTH["ACCOUNT_ADAPTER"]`` to change any hook.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.utils.module_loading import import_string

from .conf import get_settings
from .identity import VerifiedIdentity


class AccountAdapter:
    def username_for(self, identity: VerifiedIdentity) -> str:
        """A stable, unique username that does not reveal the ``sub``."""
        digest = hashlib.sha256(f"{identity.realm}:{identity.sub}".encode()).hexdigest()[:24]
        return f"ft-{identity.realm}-{digest}"

    def is_email_verified(self, identity: VerifiedIdentity) -> bool:
        """France Travail's employeur realm sends ``email_verified`` as the string "true"."""
        return identity.claims.get("email_verified") in (True, "true")

    def find_user_by_email(self, request: Any, identity: VerifiedIdentity) -> Any | None:
        """An existing user to attach a first sign-in to, or None.

        Safe by construction (docs/security.md, "Linking by email"): only when
        ``LINK_BY_EMAIL`` is on, France Travail verified the address, exactly one
        user has it, and that user

        - is neither staff nor superuser (anyone who controls a France Travail
          account with that address would own an administrator's account);
        - has no France Travail identity linked, in any realm: an address on a
          user ftauth created, or already vouched for, is never a link key (the
          takeover of issue 14: an unverified address copied at a first sign-in
          and trusted by a later one);
        - has a usable password: a user ftauth created has none, so even after
          an unlink the address ftauth wrote is never matched. The address a
          site's own sign-up verified is the only one trusted.
        """
        if not get_settings().link_by_email or not identity.email:
            return None
        if not self.is_email_verified(identity):
            return None
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        matches = list(
            user_model._default_manager.filter(**{f"{email_field}__iexact": identity.email})[:2]
        )
        if len(matches) != 1:
            return None
        user = matches[0]
        if user.is_staff or user.is_superuser:
            return None
        if not user.has_usable_password():
            return None
        from .models import LinkedAccount

        if LinkedAccount.objects.filter(user=user).exists():
            return None
        return user

    def unique_username(self, identity: VerifiedIdentity) -> str:
        """:meth:`username_for`, with a suffix when a user already has it: the user
        an unlinked identity once signed in as keeps its name, and is not reused."""
        user_model = get_user_model()
        manager = user_model._default_manager
        base = username = self.username_for(identity)
        suffix = 1
        while manager.filter(**{user_model.USERNAME_FIELD: username}).exists():
            suffix += 1
            username = f"{base}-{suffix}"
        return username

    def create_user(self, request: Any, identity: VerifiedIdentity) -> Any:
        user_model = get_user_model()
        user = user_model(**{user_model.USERNAME_FIELD: self.unique_username(identity)})
        user.set_unusable_password()
        self.populate_user(user, identity)
        user.save()
        return user

    def populate_user(self, user: Any, identity: VerifiedIdentity) -> None:
        names = (
            ("first_name", identity.claims.get("given_name")),
            ("last_name", identity.family_name),
        )
        for attr, value in names:
            if isinstance(value, str) and value and hasattr(user, attr):
                setattr(user, attr, value[:150])
        # Only an address France Travail verified is ever written where a site may
        # trust it; an unverified one stays on the linked account (its claims).
        if (
            identity.email
            and self.is_email_verified(identity)
            and hasattr(user, "email")
            and not getattr(user, "email", "")
        ):
            user.email = identity.email

    def update_user(self, request: Any, user: Any, identity: VerifiedIdentity) -> None:
        """Called on every sign-in; the default refreshes names only."""
        before = (getattr(user, "first_name", None), getattr(user, "last_name", None))
        self.populate_user(user, identity)
        if (getattr(user, "first_name", None), getattr(user, "last_name", None)) != before:
            user.save()

    def wants_fresh_claims(self, request: Any, account: Any, id_token_claims: dict) -> bool:
        """Return True to read the realm's userinfo at this returning sign-in although
        the stored claims are younger than ``CLAIMS_MAX_AGE`` (``account`` is the
        :class:`~ftauth.models.LinkedAccount`, its claims as stored, read at
        ``account.claims_at``). The call counts against France Travail's quota;
        when the quota cannot serve it in time, the sign-in completes without it."""
        return False

    def can_sign_in(self, request: Any, user: Any, identity: VerifiedIdentity) -> bool:
        """Return False to refuse this sign-in (the user sees a clear page)."""
        return True

    def can_unlink(self, request: Any, account: Any) -> bool:
        """Whether the user may unlink this France Travail identity (a ``LinkedAccount``).

        Not when it is their only way in: no usable password and no other identity
        linked. The account would be orphaned, and the identity's next sign-in would
        create a second user (allauth and python-social-auth refuse it too). A site
        with other ways in (another provider, a sign-in link by email) says so here.
        """
        from .models import LinkedAccount

        if account.user.has_usable_password():
            return True
        return LinkedAccount.objects.filter(user_id=account.user_id).exclude(pk=account.pk).exists()


def get_adapter() -> AccountAdapter:
    return import_string(get_settings().account_adapter)()
