"""ftauth's private modules (as allauth's ``internal``): the sign-in flow, the
session registry, the ending path, the identity server's metadata, the audit
trail, cache and redirect helpers.

Nothing here is a public API: its names and signatures change without notice.
A site imports only the public modules: ``ftauth.api``, ``ftauth.adapter``
(with ``ftauth.identity``), ``ftauth.signals``, ``ftauth.middleware``,
``ftauth.backends``, ``ftauth.log``, ``ftauth.models``, ``ftauth.vault`` and
``ftauth.consent`` (their errors), ``ftauth.core.errors``.
"""
