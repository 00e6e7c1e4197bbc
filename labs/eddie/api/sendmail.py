#!/usr/bin/env python3
"""Sends one mail: its parameters arrive as JSON on stdin
({"template", "to", "vars"}), the template is templates/TEMPLATE.txt
(first line the subject), $names are filled from vars. Runs as a process
of its own for every mail."""
import configparser
import json
import os
import smtplib
import string
import sys
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    req = json.load(sys.stdin)
    conf = configparser.ConfigParser()
    conf.read(os.environ.get("EDDIE_CONF", "/etc/eddie/eddie.conf"))
    with open(os.path.join(HERE, "templates", req["template"] + ".txt")) as f:
        subject, _, body = f.read().partition("\n")
    fill = lambda s: string.Template(s).substitute(req["vars"])
    msg = EmailMessage()
    msg["From"] = conf.get("mail", "from", fallback="Eddie <noreply@eddie.lab>")
    msg["To"] = req["to"]
    msg["Subject"] = fill(subject)
    msg.set_content(fill(body.lstrip("\n")), cte="8bit")
    with smtplib.SMTP(conf.get("mail", "host", fallback="mail1"), 25, timeout=10) as s:
        s.send_message(msg)


if __name__ == "__main__":
    main()
