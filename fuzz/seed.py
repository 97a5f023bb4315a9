#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from the project's own fixtures.

Seeds are the inputs the fuzzer starts from; the files it finds itself are kept elsewhere (see
run.sh). Run again after the fixtures change: `python3 fuzz/seed.py` (needs PyYAML).

- spec_json, spec_secrets: examples/*.json, the specs of handler/tests/spec_errors.rs (the good one
  and each malformed variant), the every-secret spec of handler/src/spec/secrets.rs and the good
  spec with a key given twice.
- spec_yaml: examples/*.yaml, the export in spec_errors.rs, and every JSON seed's groups written as
  an ACI YAML export (block and flow style, with an anchor).
- host_payload: fixtures/functions-host/request-*.json and invocations Berth's own
  functions receive (a step message, a deploy with a YAML and a binary body).
"""

import glob
import json
import os
import re

import yaml

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
FIXTURES = os.path.join(ROOT, "fixtures", "functions-host")


def rust_json(text):
    """The JSON inside a `json!(...)` whose body is plain JSON; None otherwise."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def balanced(text, start):
    """The text inside the parentheses opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    raise ValueError("unbalanced")


def set_pointer(doc, path, value):
    parts = path.strip("/").split("/")
    target = doc
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key = parts[-1]
    if isinstance(target, list):
        target[int(key)] = value
    elif value is None:
        target.pop(key, None)
    else:
        target[key] = value


def spec_errors_specs():
    source = open(os.path.join(ROOT, "handler", "tests", "spec_errors.rs")).read()
    good_at = source.index("json!(", source.index("fn good()")) + len("json!")
    good = rust_json(balanced(source, good_at))
    consts = dict(re.findall(r'const (\w+): &str = "([^"]*)";', source))
    specs = [good]
    for match in re.finditer(r"\bwith\(", source):
        args = balanced(source, match.end() - 1)
        path_match = re.match(r'\s*(?:"([^"]*)"|&format!\("([^"]*)"\))\s*,\s*(.*)$', args, re.S)
        if not path_match:
            continue
        path = path_match.group(1) or path_match.group(2)
        path = re.sub(r"\{(\w+)\}", lambda m: consts.get(m.group(1), m.group(0)), path)
        value_text = path_match.group(3).strip()
        if value_text == "Value::Null":
            value = None
        elif value_text.startswith("json!("):
            value = rust_json(balanced(value_text, len("json!")))
            if value is None:
                continue
        else:
            continue
        spec = json.loads(json.dumps(good))
        try:
            set_pointer(spec, path, value)
        except (KeyError, IndexError, ValueError):
            continue
        specs.append(spec)
    yaml_at = source.index('r#"', source.index("fn aci_yaml_as_az_container_export"))
    export = source[yaml_at + 3 : source.index('"#', yaml_at)]
    return specs, export


def secrets_spec():
    source = open(os.path.join(ROOT, "handler", "src", "spec", "secrets.rs")).read()
    at = source.index("json!(", source.index("fn every_secret_field")) + len("json!")
    return rust_json(balanced(source, at))


def write(target, name, data):
    folder = os.path.join(FUZZ, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def main():
    examples = {
        os.path.basename(p): json.load(open(p))
        for p in sorted(glob.glob(os.path.join(ROOT, "examples", "*.json")))
    }
    errors_specs, export = spec_errors_specs()
    json_seeds = [(f"example-{n}", json.dumps(s, indent=2)) for n, s in examples.items()]
    json_seeds += [
        (f"spec-errors-{i:02}.json", json.dumps(s)) for i, s in enumerate(errors_specs)
    ]
    json_seeds.append(("secrets-every-field.json", json.dumps(secrets_spec())))
    # A key given twice (refused at its path): json.dumps cannot write one, so it is spliced in.
    good = json.dumps(errors_specs[0])
    json_seeds.append(("duplicate-key-root.json", good.replace("{", '{"id": "first", ', 1)))
    json_seeds.append(
        (
            "duplicate-key-image.json",
            good.replace('"image": "ffmpeg:6"', '"image": "ffmpeg:6", "image": "evil"', 1),
        )
    )
    for name, text in json_seeds:
        write("spec_json", name, text)
        write("spec_secrets", name, text)

    for path in sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml"))):
        write("spec_yaml", "example-" + os.path.basename(path), open(path).read())
    write("spec_yaml", "spec-errors-export.yaml", export)
    for name, spec in list(examples.items()) + [("secrets", secrets_spec())]:
        stem = name.removesuffix(".json")
        for i, group in enumerate(spec["groups"]):
            doc = {"name": group["name"], "properties": group["properties"]}
            if spec.get("tags"):
                doc["tags"] = spec["tags"]
            write("spec_yaml", f"group-{stem}-{i}-block.yaml", yaml.safe_dump(doc, sort_keys=False))
            write("spec_yaml", f"group-{stem}-{i}-flow.yaml", json.dumps(doc))
    write(
        "spec_yaml",
        "duplicate-key.yaml",
        "name: twice\n"
        "properties:\n"
        "  restartPolicy: Never\n"
        "  containers:\n"
        "  - name: one\n"
        "    properties:\n"
        "      image: busybox\n"
        "      image: evil\n"
        "      resources: {requests: {cpu: 0.5, memoryInGb: 0.5}}\n",
    )
    write(
        "spec_yaml",
        "anchors.yaml",
        "name: anchored\n"
        "properties:\n"
        "  restartPolicy: Never\n"
        "  containers:\n"
        "  - name: one\n"
        "    properties: &props\n"
        "      image: busybox\n"
        "      resources: {requests: {cpu: 0.5, memoryInGb: 0.5}}\n"
        "  - name: two\n"
        "    properties: *props\n",
    )

    for path in sorted(glob.glob(os.path.join(FIXTURES, "request-*.json"))):
        write("host_payload", "fixture-" + os.path.basename(path), open(path, "rb").read())
    queue = json.load(open(os.path.join(FIXTURES, "request-queue-json.json")))
    queue["Data"] = {"message": json.dumps(json.dumps({"d": "transcode-42", "s": 3}))}
    queue["Metadata"]["DequeueCount"] = "2"
    write("host_payload", "berth-steps-message.json", json.dumps(queue))
    post = json.load(open(os.path.join(FIXTURES, "request-http-post-json.json")))
    req = post["Data"]["req"]
    req["Url"] = "https://berth.example.net/api/deployments?code=k"
    req["Headers"]["Content-Type"] = ["application/yaml"]
    req["Body"] = open(os.path.join(ROOT, "examples", "aci-job.yaml")).read()
    write("host_payload", "berth-deploy-yaml.json", json.dumps(post))
    req["Headers"]["Content-Type"] = ["application/octet-stream"]
    req["Body"] = "eyJncm91cHMiOltdfQ=="
    write("host_payload", "berth-deploy-binary.json", json.dumps(post))


if __name__ == "__main__":
    main()
