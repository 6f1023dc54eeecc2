"""API token hints keep the public prefix and the last 4 characters, no longer the first 4 random ones."""
from django.db import migrations


def forwards(apps, schema_editor):
    ApiToken = apps.get_model("console", "ApiToken")
    # The old hint was the secret's first 8 characters; its tail cannot be recovered from the digest.
    ApiToken.objects.exclude(hint__contains="••").update(hint="mgc_••••")


class Migration(migrations.Migration):
    dependencies = [("console", "0003_invitations")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
