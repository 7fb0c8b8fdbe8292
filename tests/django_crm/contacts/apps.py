from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "tests.django_crm.contacts"
    label = "contacts"
