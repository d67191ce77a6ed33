"""``sipyco_rpctool``'s listing: targets and documented methods of a controller.

``python -m sipyco.sipyco_rpctool HOST PORT list-targets|list-methods|call METHOD ARGS...``
(served from this stand-in where sipyco is not installed).
"""

from __future__ import annotations

import argparse
import ast
import pprint
import textwrap
from typing import Any

from ionlink.sipyco_api.pc_rpc import AutoTarget, Client


def format_argspec(args: list[str], varargs: str | None = None, varkw: str | None = None,
                   defaults: tuple | None = None, kwonlyargs: list[str] | None = None,
                   kwonlydefaults: dict | None = None, annotations: dict | None = None
                   ) -> str:
    """``(a, b=1, *, c=2) -> int`` from the parts of an argspec (``self`` left out)."""
    annotations = annotations or {}
    defaults = tuple(defaults or ())
    params = []
    first_default = len(args) - len(defaults)
    for i, name in enumerate(args):
        if i == 0 and name == "self":
            continue
        text = name + (": " + annotations[name] if name in annotations else "")
        if i >= first_default:
            text += "=" + repr(defaults[i - first_default])
        params.append(text)
    if varargs:
        params.append("*" + varargs)
    elif kwonlyargs:
        params.append("*")
    for name in kwonlyargs or []:
        text = name
        if kwonlydefaults and name in kwonlydefaults:
            text += "=" + repr(kwonlydefaults[name])
        params.append(text)
    if varkw:
        params.append("**" + varkw)
    ret = " -> " + annotations["return"] if "return" in annotations else ""
    return "(" + ", ".join(params) + ")" + ret


def list_methods(remote: Any) -> str:
    """The target docstring and one signature + docstring block per method."""
    doc = remote.get_rpc_method_list()
    out = []
    if doc["docstring"]:
        out.append(doc["docstring"] + "\n")
    for name, (argspec, docstring) in sorted(doc["methods"].items()):
        out.append(name + format_argspec(**argspec))
        if docstring:
            out.append(textwrap.indent(docstring, "    "))
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="ARTIQ RPC tool")
    parser.add_argument("server")
    parser.add_argument("port", type=int)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list-targets")
    sub.add_parser("list-methods").add_argument("-t", "--target")
    call = sub.add_parser("call")
    call.add_argument("-t", "--target")
    call.add_argument("method")
    call.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.action == "list-targets":
        remote = Client(args.server, args.port, None)
        try:
            targets, description = remote.get_rpc_id()
        finally:
            remote.close_rpc()
        print("Target(s):   " + ", ".join(targets))
        if description is not None:
            print("Description: " + description)
        return
    remote = Client(args.server, args.port, args.target or AutoTarget)
    try:
        if args.action == "list-methods":
            print(list_methods(remote))
        else:
            ret = getattr(remote, args.method)(*[ast.literal_eval(a) for a in args.args])
            if ret is not None:
                pprint.pprint(ret)
    finally:
        remote.close_rpc()



if __name__ == "__main__":
    main()
