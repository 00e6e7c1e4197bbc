"""Settings of the TodoMVC app, from /etc/todo/app.json (written by
provisioning from the lab's facts): every pg node, and the first primary.
Which node is the primary later is discovery's to say (views.follow_primary)."""
import json
import os

CONF = json.load(open(os.environ.get("TODO_CONF", "/etc/todo/app.json")))

LAB_NODE = CONF["node"]
PRIMARY = CONF["primary"]
SECRET_KEY = "todomvc-lab-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["todo"]
MIDDLEWARE = ["todo.views.follow_primary_middleware"]
ROOT_URLCONF = "todo.urls"
WSGI_APPLICATION = "todo.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Errors and the app's own warnings go to gunicorn's stderr, which is the
# journal of the app's unit (and so syslog on adm, and lab test's artifacts):
# with DEBUG off, Django would otherwise only mail them to nobody.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "todo": {"handlers": ["console"], "level": "WARNING"},
    },
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]


def _db(host):
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "todo",
        "USER": "todo",
        "PASSWORD": CONF["password"],
        "HOST": host,
        "PORT": 5432,
        "CONN_MAX_AGE": 60,
        "OPTIONS": {"connect_timeout": 2},
    }


# "default" is the primary (writes); every pg node also has an alias by name,
# so reads can go to a standby the discovery file says is live.
DATABASES = {"default": _db(PRIMARY)}
for d in CONF["databases"]:
    DATABASES[d["name"]] = _db(d["host"])
