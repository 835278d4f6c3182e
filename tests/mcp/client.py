"""Drives `karpenter-doctor mcp` with the official MCP Python SDK (PyPI `mcp`, pinned in
tests/mcp/install.sh), over stdio, as an agent would: initialize, list the tools, call each one,
and give bad arguments. Run by tests/mcp_client.rs, which passes the binary and the repository
root; every expectation is checked here and the script exits non-zero on the first failure.

Each tool's result is compared with what the same binary prints for the same request with
`-o json`, run here as a separate process, structurally (parsed JSON, not text).
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile

from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client

BIN, ROOT = sys.argv[1], sys.argv[2]  # then, against a cluster: cluster KUBECONFIG SERVED_JSON
CHINA = os.path.join(ROOT, "examples", "china-passrole")
CMK = os.path.join(ROOT, "examples", "cross-account-cmk")
TOOLS = {"explain", "check", "simulate", "preflight", "get_diagnoses"}

# No cluster: a kubeconfig whose server is a closed loopback port.
SCRATCH = tempfile.mkdtemp(prefix="mcp-client-")
DEAD_KUBECONFIG = os.path.join(SCRATCH, "kubeconfig")
with open(DEAD_KUBECONFIG, "w") as f:
    f.write(
        """apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: nobody
  user: {token: nothing}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: nobody}
current-context: nowhere
"""
    )
ENV = {
    "KUBECONFIG": DEAD_KUBECONFIG,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def cli(*args):
    """The `-o json` object the command line prints for the same request."""
    out = subprocess.run(
        [BIN, *args, "-o", "json"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=120,
    )
    assert out.returncode in (0, 3), f"{args}: exit {out.returncode}: {out.stderr}"
    return json.loads(out.stdout)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok: {what}")


def differences(a, b, path="$"):
    """Where two JSON values differ, as paths (for the failure message)."""
    if type(a) is not type(b):
        return [f"{path}: {a!r:.120} != {b!r:.120}"]
    if isinstance(a, dict):
        out = [f"{path}.{k}: only on one side" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list):
        out = [f"{path}: {len(a)} != {len(b)} items"] if len(a) != len(b) else []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, f"{path}[{i}]")
        return out
    return [] if a == b else [f"{path}: {a!r:.120} != {b!r:.120}"]


def same(got, want, what):
    """The tool's object equals the command's, compared parsed."""
    expect(got == want, f"{what}" + ("" if got == want else ":\n  " + "\n  ".join(differences(got, want)[:20])))


def structured(result, tool):
    expect(not result.is_error, f"{tool}: not an error ({text_of(result)[:400]})")
    value = result.structured_content
    expect(isinstance(value, dict), f"{tool}: structured content is an object")
    # The text block carries the same object, for clients that read text only.
    expect(json.loads(result.content[0].text) == value, f"{tool}: text block = structured content")
    return value


def text_of(result):
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def tool_error(session, tool, args, *words):
    """A run that fails: a tool result with isError and a message naming the problem."""
    result = await session.call_tool(tool, args)
    message = text_of(result)
    expect(result.is_error, f"{tool}: isError ({message[:200]!r})")
    for word in words:
        expect(word in message, f"{tool}: the error says {word!r}: {message!r}")


async def bad_params(session, tool, args, *words):
    """Arguments the tool cannot take: a tool error (isError, as the MCP specification asks for
    input validation, so that the model can correct them), in words naming them."""
    result = await session.call_tool(tool, args)
    message = text_of(result)
    expect(result.is_error, f"{tool} {args}: isError ({message[:200]!r})")
    expect(
        message.startswith("invalid arguments:"),
        f"{tool}: the error says the arguments are invalid: {message!r}",
    )
    for word in words:
        expect(word in message, f"{tool}: the error says {word!r}: {message!r}")


async def main():
    params = StdioServerParameters(command=BIN, args=["mcp"], env=ENV, cwd=ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        expect(init.server_info.name == "karpenter-doctor", f"server is karpenter-doctor ({init.server_info})")
        expect(init.capabilities.tools is not None, "server offers tools")

        listed = (await session.list_tools()).tools
        names = {t.name for t in listed}
        expect(names == TOOLS, f"tools are {sorted(TOOLS)} (got {sorted(names)})")
        for t in listed:
            schema = t.input_schema
            expect(schema.get("type") == "object", f"{t.name}: input schema is an object schema")
            expect(bool(t.description), f"{t.name}: has a description")
            expect(t.annotations is not None and t.annotations.read_only_hint, f"{t.name}: read-only")
        props = {t.name: t.input_schema.get("properties", {}) for t in listed}
        expect({"text", "iam_snapshots", "controller_role"} <= props["explain"].keys(), "explain takes text and facts")
        required = {t.name: set(t.input_schema.get("required", [])) for t in listed}
        expect(required["simulate"] == {"principal", "action"}, f"simulate requires principal, action ({required['simulate']})")

        # explain: the China story, pasted as text, with its snapshot; and the cross-account
        # key story from files.
        with open(os.path.join(CHINA, "karpenter.log")) as f:
            log = f.read()
        got = structured(
            await session.call_tool(
                "explain",
                {
                    "text": log,
                    "files": [os.path.join(CHINA, "serviceaccount.yaml")],
                    "iam_snapshots": [os.path.join(CHINA, "iam-snapshot.json")],
                },
            ),
            "explain",
        )
        want = cli(
            "explain",
            os.path.join(CHINA, "karpenter.log"),
            os.path.join(CHINA, "serviceaccount.yaml"),
            "--iam-snapshot",
            os.path.join(CHINA, "iam-snapshot.json"),
        )
        expect(len(want["items"]) >= 1, "explain -o json finds the China root cause")
        # Evidence names where it was read: the pasted text is `text`, the file its path.
        log_path = os.path.join(CHINA, "karpenter.log")
        expect(log_path in json.dumps(want), "explain -o json cites the log file")
        want = json.loads(json.dumps(want).replace(log_path, "text"))
        same(got, want, "explain (pasted log + file) = explain -o json (files), the log named `text`")
        reasons = sorted(d["status"]["reason"] for d in got["items"] if "reason" in d.get("status", {}))
        print(f"  explain found {[d['metadata']['name'] for d in got['items']]} {reasons}")

        cmk = ["describe-instances.json", "nodeclaims.json", "ec2nodeclass.yaml", "serviceaccount.yaml"]
        facts = {
            "iam_snapshots": [os.path.join(CMK, "iam-snapshot.json")],
            "kms_snapshots": [os.path.join(CMK, "kms-snapshot.json")],
        }
        got = structured(
            await session.call_tool("explain", {"files": [os.path.join(CMK, f) for f in cmk], **facts}),
            "explain (files)",
        )
        want = cli(
            "explain",
            *[os.path.join(CMK, f) for f in cmk],
            "--iam-snapshot",
            facts["iam_snapshots"][0],
            "--kms-snapshot",
            facts["kms_snapshots"][0],
        )
        expect(len(want["items"]) >= 1, "explain -o json finds the KMS root cause")
        same(got, want, "explain (files, KMS) = explain -o json")

        # simulate: the China story's PassRole request against the role's own policies.
        role = "arn:aws-cn:iam::111122223333:role/KarpenterControllerRole-prod"
        policy = os.path.join(SCRATCH, "policy.json")
        with open(policy, "w") as f:
            json.dump(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "PassNodeRole",
                            "Effect": "Allow",
                            "Action": "iam:PassRole",
                            "Resource": "arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-*",
                            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
                        }
                    ],
                },
                f,
            )
        request = {
            "principal": role,
            "action": "iam:PassRole",
            "resource": "arn:aws-cn:iam::111122223333:role/KarpenterNodeRole-prod",
            "context": ["iam:PassedToService=ec2.amazonaws.com.cn"],
            "policies": [policy],
        }
        got = structured(await session.call_tool("simulate", request), "simulate")
        want = cli(
            "simulate",
            "--principal", role,
            "--action", "iam:PassRole",
            "--resource", request["resource"],
            "--context", request["context"][0],
            "--policy", policy,
        )
        same(got, want, "simulate = simulate -o json")
        expect(got["decision"] == "implicitDeny", f"simulate: PassedToService ec2.amazonaws.com.cn is refused ({got['decision']})")
        request["context"] = ["iam:PassedToService=ec2.amazonaws.com"]
        got = structured(await session.call_tool("simulate", request), "simulate (allowed)")
        expect(got["decision"] == "allowed", "simulate: PassedToService ec2.amazonaws.com is allowed")

        # preflight: the cross-account key story before Karpenter tries, offline.
        with open(os.path.join(CMK, "ec2nodeclass.yaml")) as f:
            nodeclass = f.read()
        args = {
            "text": nodeclass,
            "files": [os.path.join(CMK, "serviceaccount.yaml")],
            "iam_snapshots": facts["iam_snapshots"],
            "kms_snapshots": facts["kms_snapshots"],
            "region": "us-east-1",
            "karpenter_version": "v1.15.0",
        }
        got = structured(await session.call_tool("preflight", args), "preflight")
        want = cli(
            "preflight",
            os.path.join(CMK, "ec2nodeclass.yaml"),
            os.path.join(CMK, "serviceaccount.yaml"),
            "--iam-snapshot", facts["iam_snapshots"][0],
            "--kms-snapshot", facts["kms_snapshots"][0],
            "--region", "us-east-1",
            "--karpenter-version", "v1.15.0",
        )
        same(got, want, f"preflight = preflight -o json ({len(want['items'])} predicted)")

        # check and get_diagnoses with no cluster reachable: a clear tool error.
        await tool_error(session, "check", {"offline": True}, "context nowhere", "127.0.0.1:9")
        await tool_error(session, "get_diagnoses", {}, "context nowhere", "127.0.0.1:9")
        missing = os.path.join(SCRATCH, "no-such-kubeconfig")
        await tool_error(session, "get_diagnoses", {"kubeconfig": missing}, "cannot load the kube config", missing)

        # Failures of a run: a file that cannot be read.
        await tool_error(session, "explain", {"text": log, "iam_snapshots": [missing]}, missing, "cannot read")

        # Bad arguments: tool errors naming them.
        await bad_params(session, "simulate", {"action": "iam:PassRole"}, "principal")
        await bad_params(session, "simulate", {**request, "context": ["no-equals-sign"]}, "KEY=VALUE")
        await bad_params(session, "explain", {"text": log, "frobnicate": 1}, "frobnicate")
        await bad_params(session, "explain", {"text": 42}, "text")
        await bad_params(session, "explain", {}, "text")
        await bad_params(session, "explain", {"files": ["-"]}, "standard input")
        await bad_params(session, "check", {"since": "yesterday"}, "yesterday")
        await bad_params(session, "preflight", {**args, "karpenter_version": "latest"}, "latest")
        try:
            await session.call_tool("delete_nodeclaims", {})
            raise AssertionError("an unknown tool was called")
        except MCPError as e:
            expect("not found" in e.message, f"an unknown tool is an error: {e.message!r}")

        # The server is still there after all of it.
        again = structured(await session.call_tool("simulate", request), "simulate after errors")
        expect(again["decision"] == "allowed", "the server answers after bad arguments")
    print("mcp client: all checks passed")


async def cluster(kubeconfig, served_path):
    """get_diagnoses and check against a real kube-apiserver: the Diagnoses it serves (the list
    the API server gave the harness, in `served_path`), and Karpenter absent from it."""
    with open(served_path) as f:
        served = json.load(f)
    params = StdioServerParameters(command=BIN, args=["mcp"], env=ENV, cwd=ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        got = structured(await session.call_tool("get_diagnoses", {"kubeconfig": kubeconfig}), "get_diagnoses")
        expect(got["kind"] == "List" and got["apiVersion"] == "v1", "get_diagnoses: a v1 List, as kubectl prints")
        expect(len(got["items"]) >= 1, f"get_diagnoses: the Diagnoses are there ({len(got['items'])})")
        for item in got["items"]:
            expect(
                item["apiVersion"] == "karpenter-doctor.io/v1alpha1" and item["kind"] == "Diagnosis",
                f"{item['metadata']['name']}: apiVersion and kind set, as kubectl sets them",
            )
        # kubectl sets each item's apiVersion and kind; a list from the API server may leave them out.
        def bare(items):
            return [{k: v for k, v in i.items() if k not in ("apiVersion", "kind")} for i in items]

        same(bare(got["items"]), bare(served["items"]), "get_diagnoses items = the API server's list")
        await tool_error(session, "check", {"kubeconfig": kubeconfig, "offline": True}, "no Karpenter here")
    print("mcp client (cluster): all checks passed")


if len(sys.argv) > 3 and sys.argv[3] == "cluster":
    asyncio.run(cluster(sys.argv[4], sys.argv[5]))
else:
    asyncio.run(main())
