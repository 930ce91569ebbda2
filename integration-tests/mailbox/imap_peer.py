"""Another IMAP client on the same mailbox (Python's imaplib): what the
user's desktop mail program does while the phone syncs through pushmail.

    imap_peer.py HOST PORT USER PASSWORD OPS_JSON

OPS_JSON is a list of operations, each a list:
    ["store", folder, uid_set, "+FLAGS" | "-FLAGS", "(\\Seen)"]
    ["expunge", folder, uid_set]        mark deleted and expunge
    ["create", folder] / ["delete", folder]
    ["append", folder, flags, message]  flags like "(\\Seen)" or ""
    ["flags", folder, uid]              prints {"uid": ..., "flags": [...]}
    ["uids", folder]                    prints the folder's UIDs
    ["attachments", folder, uid]        prints the message's attachments
                                        as Python's email package reads
                                        them: [{"name", "type", "size",
                                        "sha256"}]
    ["message", folder, uid]            prints {"from", "to", "subject",
                                        "text"} as Python's email
                                        package reads the message
Each printing operation writes one JSON line to stdout.
"""

import email
import email.policy
import hashlib
import imaplib
import json
import re
import sys


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def check(result, what):
    typ, data = result
    if typ != "OK":
        raise SystemExit(f"{what}: {typ} {data}")
    return data


def main():
    host, port, user, password, ops = sys.argv[1:6]
    imap = imaplib.IMAP4(host, int(port))
    check(imap.login(user, password), "LOGIN")
    for op in json.loads(ops):
        kind = op[0]
        if kind == "store":
            check(imap.select(quote(op[1])), "SELECT")
            check(imap.uid("STORE", op[2], op[3], op[4]), "STORE")
        elif kind == "expunge":
            check(imap.select(quote(op[1])), "SELECT")
            check(imap.uid("STORE", op[2], "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
            check(imap.expunge(), "EXPUNGE")
        elif kind == "create":
            check(imap.create(quote(op[1])), "CREATE")
        elif kind == "delete":
            check(imap.delete(quote(op[1])), "DELETE")
        elif kind == "append":
            check(imap.append(quote(op[1]), op[2] or None, None, op[3].encode()), "APPEND")
        elif kind == "flags":
            check(imap.select(quote(op[1]), readonly=True), "SELECT")
            data = check(imap.uid("FETCH", op[2], "(FLAGS)"), "FETCH")
            flags = []
            for item in data:
                if isinstance(item, bytes):
                    found = re.search(rb"FLAGS \(([^)]*)\)", item)
                    if found:
                        flags = found.group(1).decode().split()
            print(json.dumps({"uid": int(op[2]), "flags": flags}))
        elif kind == "uids":
            check(imap.select(quote(op[1]), readonly=True), "SELECT")
            data = check(imap.uid("SEARCH", None, "ALL"), "SEARCH")
            print(json.dumps([int(u) for u in data[0].split()]))
        elif kind == "attachments":
            check(imap.select(quote(op[1]), readonly=True), "SELECT")
            data = check(imap.uid("FETCH", op[2], "(BODY.PEEK[])"), "FETCH")
            raw = next(item[1] for item in data if isinstance(item, tuple))
            message = email.message_from_bytes(raw, policy=email.policy.default)
            found = []
            for part in message.iter_attachments():
                content = part.get_payload(decode=True) or b""
                found.append({
                    "name": part.get_filename(),
                    "type": part.get_content_type(),
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
                })
            print(json.dumps(found))
        elif kind == "message":
            check(imap.select(quote(op[1]), readonly=True), "SELECT")
            data = check(imap.uid("FETCH", op[2], "(BODY.PEEK[])"), "FETCH")
            raw = next(item[1] for item in data if isinstance(item, tuple))
            message = email.message_from_bytes(raw, policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",))
            print(json.dumps({
                "from": str(message["From"]),
                "to": str(message["To"]),
                "subject": str(message["Subject"]),
                "text": body.get_content() if body is not None else "",
            }))
        else:
            raise SystemExit(f"unknown operation {kind}")
    imap.logout()


if __name__ == "__main__":
    main()
