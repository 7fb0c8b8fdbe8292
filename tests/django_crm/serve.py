"""The test Django CRM on loopback: `python -m tests.django_crm.serve PORT` (env DJANGO_CRM_DB).

Creates the tables, the user `edward` / `1234` and the contact `Mr Lu`, then serves with
Django's own threaded development server until killed.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_crm.settings")
    import django
    from django.core.management import call_command

    django.setup()
    from django.contrib.auth.models import User
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    from tests.django_crm.contacts.models import Contact

    call_command("migrate", run_syncdb=True, verbosity=0)
    if not User.objects.filter(username="edward").exists():
        User.objects.create_superuser("edward", "edward@crm.test", "1234")
        Contact.objects.create(name="Mr Lu", phone="135012345678")
    port = int(sys.argv[1])
    print("ready", flush=True)
    run("127.0.0.1", port, get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main()
