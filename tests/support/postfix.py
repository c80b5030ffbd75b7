"""A private Postfix instance for tests: its own configuration, queue and log in a temporary
directory, listening on a free port of 127.0.0.1, never the system's Postfix.

It relays everything to `relay_to` (the "internet": a local SMTP sink that answers as the test
scripts it), except mail for `bounce_domain`, which it hands to `bounces_to` (the server's
inbound listener), and it keeps messages for seconds rather than days, so that an expired soft
bounce comes back quickly. Needs Debian's `postfix` package and root (Postfix's master runs as
root and its daemons as the `postfix` user); `unavailable()` says why it cannot run.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DAEMON_DIRECTORY = "/usr/lib/postfix/sbin"

# Only what relaying needs; no chroot, so that nothing must be copied into the queue folder.
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


def unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None."""
    if not os.path.exists(POSTFIX) or not os.path.isdir(DAEMON_DIRECTORY):
        return "postfix is not installed (apt-get install postfix; .ci/setup does it)"
    if os.geteuid() != 0:
        return "a private postfix instance needs root (its master runs as root)"
    return None


class Postfix:
    def __init__(
        self,
        port: int,
        relay_to: int,
        bounce_domain: str,
        bounces_to: int,
        queue_lifetime_seconds: int = 8,
    ) -> None:
        self.port = port
        # Not pytest's tmp_path: its parents are private to root, and Postfix's daemons run as
        # the postfix user.
        self.root = Path(tempfile.mkdtemp(prefix="postfix-test-"))
        self.root.chmod(0o755)
        self.config = self.root / "etc"
        self.config.mkdir()
        (self.root / "spool").mkdir(mode=0o755)  # root's; Postfix makes its folders inside
        data = self.root / "data"
        data.mkdir(mode=0o700)
        shutil.chown(data, "postfix", "postfix")
        self.log = self.root / "postfix.log"
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.root / "spool",
            "data_directory": self.root / "data",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.root,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "relay.postfix.test",
            "mydomain": "postfix.test",
            "myorigin": "postfix.test",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "relayhost": f"[127.0.0.1]:{relay_to}",
            "transport_maps": f"inline:{{{bounce_domain}=smtp:[127.0.0.1]:{bounces_to}}}",
            # Seconds, not days: a message still refused with 4xx is returned after this long.
            "maximal_queue_lifetime": f"{queue_lifetime_seconds}s",
            "bounce_queue_lifetime": f"{queue_lifetime_seconds}s",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            "delay_warning_time": "0h",
            "notify_classes": "",
            "biff": "no",
        }
        (self.config / "main.cf").write_text(
            "".join(f"{name} = {value}\n" for name, value in settings.items())
        )
        (self.config / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{port}"))

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [POSTFIX, "-c", str(self.config), *command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start(self) -> str | None:
        """Start the instance; None, or why it could not start (with Postfix's own words)."""
        for command in ("set-permissions", "check", "start"):
            done = self.run(command)
            if done.returncode != 0:
                return f"postfix {command} failed: {self.words(command) or done.stdout.strip()}"
        return None

    def words(self, command: str) -> str:
        """Postfix writes its fatal errors to a terminal only: run the command again in one."""
        script = shutil.which("script")
        if script is None:
            return ""
        line = f"{POSTFIX} -c {self.config} {command}"
        done = subprocess.run(
            [script, "-qec", line, "/dev/null"], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    def stop(self) -> None:
        self.run("stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def logged(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
