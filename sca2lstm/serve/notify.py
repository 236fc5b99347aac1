"""Sending alerts: to a webhook (JSON over HTTP, httpx) and by e-mail (the standard library's smtplib).

Each channel is tried a few times with a timeout; a channel that still fails is reported in the result
(and recorded with the alert by the daily issue), never raised: one dead mail server must not stop the
webhook, or the next morning's issue.

The webhook receives one POST per daily issue with changes::

    {"service": "sca2lstm", "issued_at": "...", "day": "2026-12-06",
     "alerts": [{"station": "32006", "change": "start", "from_level": null, "to_level": "danger",
                 "first_lead": 2, "valid_date": "...", "probability": 0.62, "level_value": 80.0, ...}]}

The e-mail has one line per alert, in the notifier's ``language`` (English, or Chinese: ``--alert_language zh``,
which also says the alerts' notes in Chinese where the service has them). SMTP credentials come from the environment
(``SCA2LSTM_SMTP_USER``, ``SCA2LSTM_SMTP_PASSWORD``), never from the command line.
"""

from __future__ import annotations

import logging
import os
import smtplib
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

import httpx

from ..weather.openmeteo import retry_after_seconds
from .messages import CHANGE_WORDS, Message, level_word

#: The languages an alert can be written in (``sca2lstm serve --alert_language``).
ALERT_LANGUAGES = ("en", "zh")

log = logging.getLogger(__name__)


class _Permanent(Exception):
    """A webhook answer that the same request would get again (a 4xx but 408 and 429, a URL moved to another
    host): said once, not tried again."""


class _Transient(Exception):
    """A webhook answer worth another try (5xx, 408, 429); ``wait``: the seconds its Retry-After asks, or None."""

    def __init__(self, text: str, wait: float | None = None):
        super().__init__(text)
        self.wait = wait


#: How a delivery starts where the channel refused the alert for good (a webhook's 4xx but 408 and 429): the
#: alert is not sent on it again that day; "failed: " starts one worth another try (the 15-minute resends).
FAILED_FINAL = "failed (final): "


def worth_resending(state) -> bool:
    """Whether a channel's delivery ``state`` ("sent", "failed: ...", "failed (final): ...", None) is a failure
    that sending again may mend."""
    return isinstance(state, str) and state.startswith("failed: ")


#: HTTP answers that say "try again later" although they are 4xx.
_TRANSIENT_4XX = (408, 429)
_REDIRECTS = (301, 302, 307, 308)


@dataclass
class Notifier:
    """Where alerts go. ``webhook``: URL or None; ``email_to``: addresses (none: no e-mail)."""

    webhook: str | None = None
    email_to: list = field(default_factory=list)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "sca2lstm@localhost"
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    timeout: float = 10.0
    retries: int = 2
    pause: float = 1.0  # seconds between tries
    # the longest a webhook's Retry-After is waited for: the retries run beside the service, but the e-mail waits
    # for them, and a receiver asking for an hour must not hold the other channel that long
    retry_after_cap: float = 60.0
    max_redirects: int = 5
    # the language of the mails' words and of the notes the alerts carry (--alert_language; ALERT_LANGUAGES)
    language: str = "en"

    @classmethod
    def from_env(cls, **kw) -> Notifier:
        return cls(smtp_user=os.environ.get("SCA2LSTM_SMTP_USER") or None,
                   smtp_password=os.environ.get("SCA2LSTM_SMTP_PASSWORD") or None, **kw)

    @property
    def enabled(self) -> bool:
        return bool(self.webhook or self.email_to)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels set up, of "webhook" and "email"."""
        return tuple(c for c, on in (("webhook", self.webhook), ("email", self.email_to)) if on)

    def send(self, payload: dict, channels=None) -> dict:
        """Send ``payload`` (see the module) on every channel, or on those of ``channels``; ``{"webhook": ...,
        "email": ...}`` with "sent", "failed: <reason>", "failed (final): <reason>" (:data:`FAILED_FINAL`: the same
        request would be refused again) or None (channel not configured, or not asked) each."""
        out = {"webhook": None, "email": None}
        if self.webhook and (channels is None or "webhook" in channels):
            out["webhook"] = self._try(lambda: self._post(payload), "webhook")
        if self.email_to and (channels is None or "email" in channels):
            out["email"] = self._try(lambda: self._mail(payload), "e-mail")
        return out

    def _try(self, send, what: str) -> str:
        err, failed = None, "failed: "
        for attempt in range(self.retries + 1):
            try:
                send()
                return "sent"
            except smtplib.SMTPAuthenticationError as e:
                # Not tried again: the same user and password are refused again, and a mail server may lock the
                # account after a few refusals.
                err = (f"the SMTP server refused the login ({e.smtp_code} {_reply_text(e.smtp_error)}); check "
                       "$SCA2LSTM_SMTP_USER and $SCA2LSTM_SMTP_PASSWORD")
                # the server and the user in the log only: the delivery is read by anyone (GET /alerts, /health)
                log.warning("alert by %s: %s:%d refused the login of %r: %s", what, self.smtp_host, self.smtp_port,
                            self.smtp_user, err)
                break
            except _Permanent as e:
                # the same request gets the same answer: trying again only delays the other channel
                err, failed = " ".join(str(e).split()), FAILED_FINAL
                log.warning("alert by %s: %s (not tried again)", what, err)
                break
            except (httpx.HTTPError, OSError, smtplib.SMTPException, _Transient) as e:
                err = " ".join((str(e) if isinstance(e, _Transient) else f"{type(e).__name__}: {e}").split())
                log.warning("alert by %s: attempt %d failed (%s)", what, attempt + 1, err)
                if attempt < self.retries:
                    wait = getattr(e, "wait", None)
                    time.sleep(self.pause if wait is None else min(max(wait, self.pause), self.retry_after_cap))
        return f"{failed}{err}"

    def _post(self, payload: dict) -> None:
        """POST ``payload`` to the webhook; a redirect on the same host is followed with the same POST (httpx's own
        following turns a POST answered 301/302 into a GET, which drops the alert), one to another host is not
        (the alerts go only where the service was set up to send them) and is said with where it points."""
        url = httpx.URL(self.webhook)
        for _ in range(self.max_redirects + 1):
            r = httpx.post(url, json=payload, timeout=self.timeout)
            if r.status_code not in _REDIRECTS:
                break
            where = r.headers.get("location")
            if not where:
                raise _Permanent(f"the webhook answered HTTP {r.status_code} (moved) without saying where")
            target = url.join(where)
            if target.host != url.host or (url.scheme == "https" and target.scheme != "https"):
                raise _Permanent(f"the webhook URL moved (HTTP {r.status_code}) to {target}; not followed to "
                                 "another host: set --alert_webhook to it")
            log.warning("alert by webhook: %s moved (HTTP %d) to %s; sent there, set --alert_webhook to it", url,
                        r.status_code, target)
            url = target
        else:
            raise _Permanent(f"the webhook redirected more than {self.max_redirects} times (last to {url})")
        if r.status_code < 300:
            return
        reason = f"the webhook answered HTTP {r.status_code}" + (f" {r.reason_phrase}" if r.reason_phrase else "")
        if r.status_code >= 500 or r.status_code in _TRANSIENT_4XX:
            raise _Transient(reason, retry_after_seconds(r.headers.get("retry-after")))
        raise _Permanent(f"{reason}, a refusal the same request gets again; check --alert_webhook and the "
                         "receiver")

    def _mail(self, payload: dict) -> None:
        msg = EmailMessage()
        msg["Subject"] = email_subject(payload, self.language)  # Chinese: sent as RFC 2047 UTF-8 words
        msg["From"] = self.smtp_from
        msg["To"] = ", ".join(self.email_to)
        text = email_text(payload, self.language)
        # Chinese text in base64: the policy's default would send it as 8-bit bytes, which a mail server that does
        # not offer 8BITMIME may mangle; English stays 7-bit text, as before
        msg.set_content(text, cte=None if text.isascii() else "base64")
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            refused = smtp.send_message(msg)
        if refused:  # the others have it: sending again would repeat it to them, so the refusal is only said
            log.warning("alert by e-mail: the SMTP server refused %s; the other addresses have it",
                        "; ".join(f"{to} ({code} {_reply_text(reply)})" for to, (code, reply) in refused.items()))


def _reply_text(reply) -> str:
    """An SMTP server's reply text (bytes as it sends them) on one line."""
    return " ".join((reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)).split())


#: An alert on data older than this many days says so (1: yesterday's flow, the normal morning).
STALE_DAYS = 2


def alert_line(a: dict, lang: str = "en") -> str:
    """One alert in words in ``lang`` (:data:`ALERT_LANGUAGES`), e.g. 'station 32006: danger (80.0 m3/s) starts,
    from 2026-12-08 (day 2 of the forecast), probability 62%'; one sent again after a channel missed it says so,
    so a mail read at 08:15 or the next morning is not taken for a new change."""
    again = Message("alert_again") if a.get("resent_after_failed_delivery") else ""
    frm, to = level_word(a["from_level"], lang), level_word(a["to_level"], lang)
    if a["change"] == "end":
        return Message("alert_end", station=a["station"], from_level=frm, again=again).said_in(lang)
    what = {"start": Message("alert_start"), "rise": Message("alert_rise", from_level=frm),
            "fall": Message("alert_fall", from_level=frm)}
    p, age, stage = a.get("probability"), a.get("data_age_days"), a.get("level_stage_m")
    return Message("alert_change", station=a["station"], to_level=to,
                   value=a.get("level_value", float("nan")),
                   stage=Message("alert_stage", stage=stage) if stage is not None else "", what=what[a["change"]],
                   valid_date=a.get("valid_date"), first_lead=a.get("first_lead"),
                   probability=Message("alert_probability", p=p) if p is not None else "",
                   stale=Message("alert_stale", issue_date=a.get("issue_date"), age=age)
                   if age is not None and age > STALE_DAYS else "", again=again).said_in(lang)


def email_subject(payload: dict, lang: str = "en") -> str:
    """The subject of the alert mail in ``lang``: how many changes, the first five; one whose alerts are all sent
    again says so (a mail that comes at 08:15 or the next morning is not a new change: the inbox says so before it
    is opened)."""
    alerts = payload["alerts"]
    words = CHANGE_WORDS.get(lang, {})
    changes = ("、" if lang == "zh" else ", ").join(f"{a['station']} {words.get(a['change'], a['change'])}"
                                                   for a in alerts[:5])
    return Message("alert_subject", n=len(alerts), day=payload["day"], changes=changes,
                   more=Message("alert_subject_more") if len(alerts) > 5 else "",
                   again=Message("alert_subject_again")
                   if alerts and all(a.get("resent_after_failed_delivery") for a in alerts) else "").said_in(lang)


def email_text(payload: dict, lang: str = "en") -> str:
    lines = [Message("alert_heading", day=payload["day"], issued_at=payload["issued_at"]).said_in(lang), ""]
    lines += [alert_line(a, lang) for a in payload["alerts"]]
    return "\n".join(lines) + "\n"
