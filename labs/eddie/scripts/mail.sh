#!/bin/sh
# Postfix, the lab's mail server: it accepts mail for any address at
# eddie.lab from the lab's network and delivers it to one Maildir,
# /var/mail/vhosts/eddie.lab/all/ (new/ holds what arrived; virtual(8) does
# not allow a map that makes a folder per address from a pattern).
set -eu
id vmail >/dev/null 2>&1 || useradd --system --uid 5000 --user-group --home /var/mail/vhosts --shell /usr/sbin/nologin vmail
mkdir -p /var/mail/vhosts/eddie.lab
chown -R vmail:vmail /var/mail/vhosts
echo "$LAB_FQDN" > /etc/mailname
postconf -e \
  "myhostname = $LAB_FQDN" \
  "mydestination = localhost" \
  "inet_interfaces = all" \
  "inet_protocols = ipv4" \
  "mynetworks = 127.0.0.0/8 $LAB_SUBNET" \
  "relayhost =" \
  "virtual_mailbox_domains = eddie.lab" \
  "virtual_mailbox_base = /var/mail/vhosts" \
  "virtual_mailbox_maps = static:eddie.lab/all/" \
  "virtual_uid_maps = static:5000" \
  "virtual_gid_maps = static:5000" \
  "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination" \
  "maillog_file = /var/log/postfix.log"
newaliases
systemctl restart postfix
