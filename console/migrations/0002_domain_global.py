"""A domain belongs to one MCP server installation-wide; a database where two instances share one must be sorted first."""
from django.db import migrations, models
from django.db.models import Count


def refuse_shared_domains(apps, schema_editor):
    McpDomain = apps.get_model("console", "McpDomain")
    shared = list(McpDomain.objects.values("host").annotate(n=Count("pk")).filter(n__gt=1)
                  .order_by("host").values_list("host", flat=True))
    if shared:
        # Deleting either row would silently take an endpoint away from a team: an operator decides.
        raise RuntimeError(
            "Cannot make domains unique across the installation: "
            + ", ".join(shared[:20]) + (" …" if len(shared) > 20 else "")
            + " is used by MCP servers in more than one instance. Remove the domain from all but one "
              "MCP server (console or /api/v1/mcp-servers/), then run the migration again."
        )


class Migration(migrations.Migration):
    dependencies = [("console", "0001_initial")]

    operations = [
        migrations.RunPython(refuse_shared_domains, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="mcpdomain", name="uniq_domain_per_instance"),
        migrations.AddConstraint(
            model_name="mcpdomain",
            constraint=models.UniqueConstraint(fields=("host",), name="uniq_domain_host"),
        ),
    ]
