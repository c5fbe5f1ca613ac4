"""The role groups of design §9 on every installation, with the model permissions the admin site checks.

What a role lets a user do in netsec's own pages and API is decided by ``flows.access`` from the group
names; these permissions make the Django admin agree with it. A model added later that a role should
see gets its permissions from a migration of its own.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

READ = {
    "flows": ["cluster", "namespace", "node", "workload", "service", "serviceaddress", "serviceport",
              "serviceendpoint", "pod", "containerport", "podaddress", "networkpolicy", "rawflow", "communication",
              "aggregationstate", "ipalias", "cidrconfig", "servicebackend", "observedip"],
    "policies": ["draft", "rowdecision", "manualrule", "draftrevision"],
}
EDIT = {"policies": ["draft", "rowdecision", "manualrule", "draftrevision"]}
ADMIN = {"flows": ["cluster", "ipalias", "cidrconfig", "namespacegrant"], "auth": ["user", "group"]}

ROLES = {
    "Viewers": [("view", READ)],
    "Editors": [("view", READ), ("add", EDIT), ("change", EDIT), ("delete", EDIT)],
    "Admins": [("view", READ), ("add", EDIT), ("change", EDIT), ("delete", EDIT),
               ("view", ADMIN), ("add", ADMIN), ("change", ADMIN), ("delete", ADMIN)],
}


def create_roles(apps, schema_editor):
    # Permissions are normally made after every migration has run; these groups need them now.
    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        codenames = {(app, f"{action}_{model}") for action, models in grants for app, names in models.items()
                     for model in names}
        permissions = [
            p for p in Permission.objects.select_related("content_type")
            if (p.content_type.app_label, p.codename) in codenames
        ]
        missing = codenames - {(p.content_type.app_label, p.codename) for p in permissions}
        if missing:
            raise RuntimeError(f"permissions missing for role {name}: {sorted(missing)}")
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("flows", "0004_namespace_grants"),
        ("policies", "0002_structured_ports"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
