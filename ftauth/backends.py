"""Authentication backend: logs in the user a verified France Travail identity belongs to.

It does no HTTP and no JWT work: the callback view validates everything and
hands over an already verified :class:`~ftauth.identity.VerifiedIdentity`.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend


class FranceTravailBackend(BaseBackend):
    def authenticate(self, request, *, ftauth_identity=None, **kwargs):
        if ftauth_identity is None:
            return None
        from .internal.signin import resolve_user

        return resolve_user(request, ftauth_identity)

    def get_user(self, user_id):
        User = get_user_model()
        try:
            user = User._default_manager.get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if getattr(user, "is_active", True) else None
