#!/usr/bin/python3
"""Checks an X-Twilio-Signature with the official library: twilio.request_validator.RequestValidator.

Usage: check_signature.py [--token TOKEN] URL PARAMS SIGNATURE
  URL        the full URL the request was sent to
  PARAMS     the decoded POST parameters as JSON: an object {"Name": "value"}, or a list of [name, value]
             pairs; "@path" reads the JSON from a file, "-" from stdin
  SIGNATURE  the X-Twilio-Signature header value
The auth token comes from --token or, so that it stays out of process listings, $TWILIO_AUTH_TOKEN.

Exit status: 0 valid, 1 invalid, 2 usage error, 77 the twilio module is missing (a test may skip).
Run it with Debian's /usr/bin/python3, which has python3-twilio.
"""
import argparse
import json
import os
import sys


def load_params(arg):
    if arg == "-":
        text = sys.stdin.read()
    elif arg.startswith("@"):
        with open(arg[1:], encoding="utf-8") as f:
            text = f.read()
    else:
        text = arg
    data = json.loads(text)
    if isinstance(data, list):
        # python3-twilio 7.x validates a plain dict: a repeated name keeps its last value, as a web
        # framework's dict view of the form would.
        data = {str(k): str(v) for k, v in data}
    if not isinstance(data, dict):
        raise ValueError("PARAMS must be a JSON object or a list of [name, value] pairs")
    return {str(k): str(v) for k, v in data.items()}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--token", default=os.environ.get("TWILIO_AUTH_TOKEN"))
    parser.add_argument("url")
    parser.add_argument("params")
    parser.add_argument("signature")
    args = parser.parse_args(argv)
    if not args.token:
        print("check_signature: no auth token (--token or $TWILIO_AUTH_TOKEN)", file=sys.stderr)
        return 2
    try:
        from twilio.request_validator import RequestValidator
    except ImportError as e:
        print(f"check_signature: twilio module missing: {e}", file=sys.stderr)
        return 77
    try:
        params = load_params(args.params)
    except (OSError, ValueError) as e:
        print(f"check_signature: bad PARAMS: {e}", file=sys.stderr)
        return 2
    if RequestValidator(args.token).validate(args.url, params, args.signature):
        return 0
    validator = RequestValidator(args.token)
    print(f"check_signature: invalid; expected {validator.compute_signature(args.url, params)} "
          f"(or with/without the port), got {args.signature}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
