#!/usr/bin/env bash
# chatpulse's e-mail alerts into a real SMTP server (python3-aiosmtpd,
# Maildir handler): a Knot zone purged makes the service go down — one DOWN
# e-mail naming the DNS root cause; the zone reloaded — one recovery e-mail.
# Then a service whose name is 5,000 characters without a space goes down
# and up: aiosmtpd refuses any line over 1,000 bytes ("500 Line too long"),
# so both its e-mails arriving shows every header and body line fits.
source "$(dirname "$0")/lib.sh"

HTTP_PORT=$(free_port)
SMTP_PORT=$(free_port)
start_knot
mkdir -p "$WORK/mail/tmp" "$WORK/mail/new" "$WORK/mail/cur"
spawn aiosmtpd /usr/bin/python3 -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" -c aiosmtpd.handlers.Mailbox "$WORK/mail"
smtp_ready() { /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $SMTP_PORT), 1)"; }
wait_until "aiosmtpd listening" 20 smtp_ready
PAGE_PORT=$(free_port)
mkdir -p "$WORK/page"
start_page() {
  spawn page /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$WORK/page" "$PAGE_PORT"
  PAGE_PID=$LAST_PID
}
start_page
page_ready() { curl -sf "http://127.0.0.1:$PAGE_PORT/"; }
wait_until "the long-named service's page serving" 20 page_ready
LONG_NAME=$(printf 'W%.0s' $(seq 5000))

{ config_header "$HTTP_PORT"; cat <<CONF
[alerts]
group_wait = "1s"
[alerts.email]
smtp = "smtp://127.0.0.1:$SMTP_PORT"
from = "chatpulse@example.org"
to = ["oncall@example.org"]
CONF
  dns_service whatsapp WhatsApp web.chat.test 'recursion = false'
  http_service long "$LONG_NAME" "http://127.0.0.1:$PAGE_PORT/"
} >"$WORK/config.toml"

start_chatpulse "$WORK/config.toml" "$HTTP_PORT"
wait_until "whatsapp up" 20 service_is whatsapp up
wait_until "the long-named service up" 20 service_is long up

mails() { ls "$WORK/mail/new" | wc -l; }
has_mails() { [ "$(mails)" -ge "$1" ]; }
# mail N: the file of the Nth e-mail delivered, oldest first.
mail() { echo "$WORK/mail/new/$(ls -tr "$WORK/mail/new" | sed -n "${1}p")"; }
# expect_subject N PREFIX: the Nth e-mail's decoded Subject starts with PREFIX.
expect_subject() {
  local subject
  subject=$(/usr/bin/python3 -c "
import email, email.header, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
print(str(email.header.make_header(email.header.decode_header(m['Subject']))))
" "$(mail "$1")")
  [[ "$subject" == "$2"* ]] || fail "unexpected subject of e-mail $1: \"$subject\""
  log "ok: \"$subject\""
}

knotc -c "$KNOT_CONF" -f zone-purge chat.test +expire >/dev/null
wait_until "the DOWN e-mail in the Maildir" 30 has_mails 1
expect_subject 1 "[chatpulse] WhatsApp DOWN — dns: dns-1 dns_servfail — web.chat.test A @127.0.0.1:$DNS_PORT: SERVFAIL"
grep -qi '^Message-ID: <down-' "$(mail 1)" || fail "no stable Message-ID"
grep -qi 'multipart/alternative' "$(mail 1)" || fail "not multipart/alternative"

knotc -c "$KNOT_CONF" -b reload >/dev/null
wait_until "the recovery e-mail" 30 has_mails 2
expect_subject 2 "[chatpulse] WhatsApp recovered after "
[ "$(mails)" -eq 2 ] || fail "expected exactly 2 e-mails, got $(mails)"

kill "$PAGE_PID"
wait_until "the long-named service's DOWN e-mail" 30 has_mails 3
expect_subject 3 "[chatpulse] WWWWWWWWWW"
start_page
wait_until "the long-named service's recovery e-mail" 30 has_mails 4
for n in 3 4; do
  grep -q '…' <(/usr/bin/python3 -c "
import email, email.header, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
print(str(email.header.make_header(email.header.decode_header(m['Subject']))))
" "$(mail "$n")") || fail "e-mail $n: the Subject is not cut with a marker"
  long=$(awk 'length > 998' "$(mail "$n")" | wc -l)
  [ "$long" -eq 0 ] || fail "e-mail $n has $long lines over 998 bytes"
done
/usr/bin/python3 -c "
import email, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'))
text = next(p for p in m.walk() if p.get_content_type() == 'text/plain').get_payload(decode=True).decode()
sys.exit(0 if 'W' * 5000 in text else 1)
" "$(mail 4)" || fail "the recovery's text does not carry the whole name"
log "ok: the long name's DOWN and recovery got through, every line within 998 bytes"
grep -q "Line too long" "$WORK/chatpulse.log" && fail "a message was refused as too long"
log "PASS"
