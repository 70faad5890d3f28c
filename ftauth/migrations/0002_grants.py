# One grant per sign-in (issue 10): the single TokenSet of each linked account becomes
# that account's one Grant, and every session registered for the account is bound to it
# (they all used those tokens). The identity server's session id moves from the
# session row to the grant.

import django.db.models.deletion
from django.db import migrations, models


def bind_sessions_to_grants(apps, schema_editor):
    Grant = apps.get_model("ftauth", "Grant")
    AccountSession = apps.get_model("ftauth", "AccountSession")
    for grant in Grant.objects.iterator():
        sessions = AccountSession.objects.filter(account_id=grant.account_id)
        sid = (grant.id_token_claims or {}).get("sid")
        if not isinstance(sid, str) or not sid:
            sid = next((s.op_sid for s in sessions if s.op_sid), "")
        grant.op_sid = sid[:255]
        grant.save(update_fields=["op_sid"])
        sessions.update(grant=grant)


def unbind_sessions(apps, schema_editor):
    """Back to one token set per account: each account keeps its most recently
    refreshed (or obtained) grant; its other grants are deleted, and the sessions
    bound to them (cascade) end: those devices sign in again. Nothing else is lost."""
    Grant = apps.get_model("ftauth", "Grant")
    AccountSession = apps.get_model("ftauth", "AccountSession")
    kept = {}
    latest_first = (
        models.F("refreshed_at").desc(nulls_last=True),
        "-obtained_at",
        "-pk",
    )
    for grant in Grant.objects.order_by("account_id", *latest_first).iterator():
        if grant.account_id in kept:
            grant.delete()
        else:
            kept[grant.account_id] = grant.pk
    for session in AccountSession.objects.select_related("grant").iterator():
        if session.grant is not None:
            session.op_sid = session.grant.op_sid
            session.save(update_fields=["op_sid"])


class Migration(migrations.Migration):
    dependencies = [
        ("ftauth", "0001_initial"),
    ]

    operations = [
        migrations.RenameModel("TokenSet", "Grant"),
        migrations.AlterField(
            model_name="grant",
            name="account",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="grants",
                to="ftauth.linkedaccount",
                verbose_name="compte France Travail lié",
            ),
        ),
        migrations.AlterModelOptions(
            name="grant",
            options={"verbose_name": "autorisation", "verbose_name_plural": "autorisations"},
        ),
        migrations.AddField(
            model_name="grant",
            name="op_sid",
            field=models.CharField(
                blank=True, db_index=True, max_length=255, verbose_name="session France Travail"
            ),
        ),
        migrations.AddField(
            model_name="grant",
            name="device",
            field=models.CharField(blank=True, max_length=200, verbose_name="appareil"),
        ),
        migrations.AddField(
            model_name="grant",
            name="checked_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="vérifié le"),
        ),
        migrations.AddIndex(
            model_name="grant",
            index=models.Index(fields=["account", "-refreshed_at"], name="ftauth_grant_latest"),
        ),
        migrations.AddField(
            model_name="accountsession",
            name="grant",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="sessions",
                to="ftauth.grant",
            ),
        ),
        migrations.RunPython(bind_sessions_to_grants, unbind_sessions),
        migrations.RemoveField(model_name="accountsession", name="op_sid"),
        # The registry row alone says whether a session may go on (signed cookies too).
        migrations.RemoveField(model_name="linkedaccount", name="session_generation"),
        migrations.AddField(
            model_name="linkedaccount",
            name="consent_revoked_pending",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("signed_in", "connexion"),
                    ("linked", "compte lié"),
                    ("unlinked", "compte délié"),
                    ("signed_out", "déconnexion"),
                    ("tokens_refreshed", "jetons rafraîchis"),
                    ("consent_revoked", "consentement retiré"),
                    ("sessions_ended", "sessions terminées"),
                    ("grant_ended", "autorisation terminée"),
                    ("deleted", "compte supprimé"),
                    ("backchannel_logout", "déconnexion par le fournisseur"),
                    ("sign_in_failed", "échec de connexion"),
                    ("keys_rotated", "clés renouvelées"),
                ],
                max_length=32,
                verbose_name="type",
            ),
        ),
    ]
