"""What a message that came back to a VERP address says (docs/bounces.md), read in this order:

1. an RFC 5965 ARF report (`multipart/report; report-type=feedback-report`): a spam complaint,
   unless its `Feedback-Type` says otherwise (`not-spam`, `auth-failure`: ignored);
2. an RFC 3464 delivery status notification (`report-type=delivery-status`): `Status: 5.x.x`
   is a hard bounce, `4.x.x` a soft one, with the reason the SMTP relay's status-code table gives
   (`classify` in server/mta/smtp.py); a success notice (`2.x.x`, `Action: delivered`) is ignored;
3. an auto-reply (RFC 3834 `Auto-Submitted`, `X-Autoreply`, an "out of office" subject) that
   does not come from a mailer daemon: ignored;
4. a bounce in one of the many older formats (qmail, Exchange, Yahoo, Exim ...): Mailman's
   detectors (`flufl.bounce`) tell permanent (hard) from temporary (soft) failures; the reason
   comes from an SMTP reply in the text when there is one, else the table `DETECTED` below;
5. anything else: ignored, never a bounce.

An ignored report is recorded (its event says what it was) and changes nothing.
"""

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

from flufl.bounce import all_failures

from models.enums import FailureReason, FeedbackType
from models.optouts import is_complaint
from models.reasons import IGNORED_REPORT, Bounce, Verdict
from server.mta.smtp import classify

R = FailureReason

# A DSN recipient without a usable Status, by its Action; and what Mailman's detectors find,
# when the text holds no SMTP reply of the same class. Each row is checked against SPEC §4's
# lists when it is built (models/reasons.py), so a wrong one stops the import.
BY_ACTION: dict[str, Bounce] = {
    "failed": Bounce(Verdict.HARD, R.REFUSED),
    "delayed": Bounce(Verdict.SOFT, R.UNDEFINED),
}
DETECTED: dict[str, Bounce] = {
    "permanent": Bounce(Verdict.HARD, R.REFUSED),
    "temporary": Bounce(Verdict.SOFT, R.UNDEFINED),
}

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_REPLY = re.compile(r"(?<![\d.])([45]\d\d)[ -]+([45]\.\d{1,3}\.\d{1,3})\b")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[ -]?(reply|response)|autoreply"
    r"|abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|vacation)",
    re.IGNORECASE,
)
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "mail.daemon"}
TEXT_LIMIT = 64 * 1024  # how much of a bounce's text is searched for an SMTP reply


@dataclass(frozen=True)
class Report:
    """What the message is, and the feedback it becomes."""

    kind: str  # for the log line: "dsn 5.1.1", "arf abuse", "auto-reply", "unrecognised" ...
    type: FeedbackType
    reason: FailureReason | None = None

    @classmethod
    def bounce(cls, kind: str, row: Bounce) -> "Report":
        return cls(kind, row.type, row.reason)


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def message_key(message: Message, raw: bytes) -> str:
    """What makes a report the same report when it comes again: its Message-ID, else its bytes
    (an MTA that sends it again after a lost answer sends the same queue file)."""
    message_id = str(message.get("Message-ID") or "").strip()
    seed = message_id.encode("utf-8", "replace") if message_id else raw
    return hashlib.sha256(seed).hexdigest()[:32]


def read_report(message: Message) -> Report:
    report_type = message.get_param("report-type", header="content-type")
    if message.get_content_type() == "multipart/report" and isinstance(report_type, str):
        report_type = report_type.lower()
        if report_type == "feedback-report":
            return _arf(message)
        if report_type == "delivery-status":
            found = _dsn(message)
            if found is not None:
                return found
    if _auto_reply(message):
        return Report.bounce("auto-reply", IGNORED_REPORT)
    return _detected(message)


def _parts(message: Message, content_type: str) -> list[Message]:
    """The report's own parts of this type (never those of the message it encloses)."""
    payload = message.get_payload()
    if not isinstance(payload, list):
        return []
    return [p for p in payload if isinstance(p, Message) and p.get_content_type() == content_type]


def _fields(part: Message) -> list[Message]:
    """The field blocks of a message/feedback-report or message/delivery-status part."""
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _arf(message: Message) -> Report:
    for part in _parts(message, "message/feedback-report"):
        for block in _fields(part):
            feedback_type = block.get("Feedback-Type")
            if feedback_type is not None:
                text = str(feedback_type).strip().lower()[:40]
                if is_complaint(text):
                    return Report(f"arf {text}", FeedbackType.COMPLAINT)
                return Report.bounce(f"arf {text}", IGNORED_REPORT)
    return Report.bounce("arf without Feedback-Type", IGNORED_REPORT)


def _dsn(message: Message) -> Report | None:
    """The worst recipient of the notification: a permanent failure, else a delay, else a
    success notice (ignored). None when there is no delivery-status part to read."""
    blocks = [b for part in _parts(message, "message/delivery-status") for b in _fields(part)]
    recipients = [b for b in blocks if b.get("Action") is not None or b.get("Status") is not None]
    if not recipients:
        return None
    found: list[tuple[int, Report]] = []
    for block in recipients:
        action = str(block.get("Action") or "").strip().lower()
        # Some MTAs write "failure" or "delay": read by their stem.
        action = {"fail": "failed", "dela": "delayed"}.get(action[:4], action)
        status = _STATUS.match(str(block.get("Status") or ""))
        cls = status.group(1) if status else {"failed": "5", "delayed": "4"}.get(action, "2")
        if cls == "2" or action in ("delivered", "relayed", "expanded"):
            found.append((0, Report.bounce(f"dsn {action or 'success'}", IGNORED_REPORT)))
            continue
        if status is None:
            found.append((_rank(cls), Report.bounce(f"dsn {action}", BY_ACTION[action])))
            continue
        code = ".".join(status.groups())
        basic = _basic_code(str(block.get("Diagnostic-Code") or ""), cls)
        kind, reason = classify(basic, code)
        row = Bounce(Verdict.HARD if kind is FeedbackType.HARD_BOUNCE else Verdict.SOFT, reason)
        found.append((_rank(cls), Report.bounce(f"dsn {code}", row)))
    return max(found, key=lambda item: item[0])[1]


def _rank(cls: str) -> int:
    return {"5": 2, "4": 1}.get(cls, 0)


def _basic_code(diagnostic: str, cls: str) -> int:
    """The SMTP reply code of `Diagnostic-Code: smtp; 550 ...` when it is of the status's class
    (so that `553` without an enhanced code still reads as USER_UNKNOWN), else the class."""
    match = re.search(r"\b([245]\d\d)\b", diagnostic)
    if match and match.group(1)[0] == cls:
        return int(match.group(1))
    return int(cls) * 100


def _auto_reply(message: Message) -> bool:
    """A person's automatic answer. A mailer daemon's notice, or any report (a sieve or
    Dovecot rejection is an MDN marked auto-replied), is a bounce, whatever headers it has."""
    sender = parseaddr(str(message.get("From") or ""))[1].lower().split("@")[0]
    if sender in _DAEMONS or message.get_content_type() == "multipart/report":
        return False
    submitted = str(message.get("Auto-Submitted") or "").strip().lower()
    if submitted and submitted != "no":
        return True
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    if str(message.get("Precedence") or "").strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(str(message.get("Subject") or "")))


def _detected(message: Message) -> Report:
    """Mailman's detectors; the reason from an SMTP reply in the text when there is one."""
    temporary, permanent = all_failures(message)
    if not temporary and not permanent:
        return Report.bounce("unrecognised", IGNORED_REPORT)
    verdict = "permanent" if permanent else "temporary"
    row = DETECTED[verdict]
    reply = _REPLY.search(_text(message))
    if reply and reply.group(1)[0] == ("5" if permanent else "4"):
        row = Bounce(row.verdict, classify(int(reply.group(1)), reply.group(2))[1])
        return Report.bounce(f"{verdict} bounce {reply.group(1)} {reply.group(2)}", row)
    return Report.bounce(f"{verdict} bounce", row)


def _text(message: Message) -> str:
    out: list[str] = []
    size = 0
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", "replace")
            out.append(text)
            size += len(text)
            if size > TEXT_LIMIT:
                break
    return "\n".join(out)[:TEXT_LIMIT]
