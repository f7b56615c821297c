#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Offline checks of docker/k8s/*.yaml and docker/compose.yaml (no cluster here).

Every Kubernetes object is checked field by field against the API models of
Debian's python3-kubernetes (unknown fields, wrong types, missing required
fields), then the wiring this project relies on is checked: the Indexed Job's
completions/parallelism equal the shard count given to the entry point, the
merge Job uses the same count and shard root and writes the config's cache,
the FUSE container may mount and propagates the mount to the nginx sidecar,
selectors match, every referenced PVC/ConfigMap exists, the PVC is
ReadWriteMany.  The compose file is checked the same way (FUSE device,
SYS_ADMIN, rshared/rslave binds, build targets that exist in the Dockerfile).
Finally the checker is run on broken copies and must reject each of them.
Exit 0 all good, 1 failures, 77 (skip) without python3-yaml/kubernetes.
"""
import copy
import json
import os
import re
import sys

try:
    import yaml
    import kubernetes.client as kc
except ImportError as e:
    print(f"skip: {e.name} missing (Debian: python3-yaml python3-kubernetes)")
    sys.exit(77)

MODELS = {
    ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("batch/v1", "Job"): "V1Job",
    ("apps/v1", "Deployment"): "V1Deployment",
}


def check_type(obj, typ, path, errs):
    """Check obj (parsed YAML) against an openapi type of the client."""
    if typ.startswith("list["):
        if not isinstance(obj, list):
            errs.append(f"{path}: expected a list, got {type(obj).__name__}")
            return
        for i, v in enumerate(obj):
            check_type(v, typ[5:-1], f"{path}[{i}]", errs)
    elif typ.startswith("dict("):
        inner = typ[5:-1].split(", ", 1)[1]
        if not isinstance(obj, dict):
            errs.append(f"{path}: expected a map, got {type(obj).__name__}")
            return
        for k, v in obj.items():
            check_type(v, inner, f"{path}.{k}", errs)
    elif typ == "str" or typ == "datetime":
        if not isinstance(obj, str):
            errs.append(f"{path}: expected a string, got {obj!r}")
    elif typ == "int":
        if not isinstance(obj, int) or isinstance(obj, bool):
            errs.append(f"{path}: expected an integer, got {obj!r}")
    elif typ == "bool":
        if not isinstance(obj, bool):
            errs.append(f"{path}: expected true/false, got {obj!r}")
    elif typ == "float":
        if not isinstance(obj, (int, float)) or isinstance(obj, bool):
            errs.append(f"{path}: expected a number, got {obj!r}")
    elif typ == "object":
        pass  # IntOrString, RawExtension...
    else:
        cls = getattr(kc, typ)
        if not isinstance(obj, dict):
            errs.append(f"{path}: expected a {typ} map, got {obj!r}")
            return
        by_json = {v: k for k, v in cls.attribute_map.items()}
        kwargs = {}
        for k, v in obj.items():
            if k not in by_json:
                errs.append(f"{path}.{k}: unknown field of {typ}")
                continue
            attr = by_json[k]
            check_type(v, cls.openapi_types[attr], f"{path}.{k}", errs)
            kwargs[attr] = v
        try:
            cls(**kwargs)  # the client's own required-field validation
        except ValueError as e:
            errs.append(f"{path}: {e}")


def load_docs(files):
    docs = []
    for f in files:
        with open(f) as fh:
            for i, d in enumerate(yaml.safe_load_all(fh)):
                if d is not None:
                    docs.append((f"{os.path.basename(f)}#{i}", d))
    return docs


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def check_k8s(docs, entry_cmds):
    errs = []
    objs = {}
    for where, d in docs:
        key = (d.get("apiVersion"), d.get("kind"))
        if key not in MODELS:
            errs.append(f"{where}: unexpected object {key}")
            continue
        check_type(d, MODELS[key], f"{where}:{d['kind']}", errs)
        name = d.get("metadata", {}).get("name")
        objs[(d["kind"], name)] = d
    if errs:
        return errs

    def get(kind, name):
        o = objs.get((kind, name))
        if o is None:
            errs.append(f"missing {kind}/{name}")
        return o

    pvc = get("PersistentVolumeClaim", "vizfs-data")
    cm = get("ConfigMap", "vizfs-config")
    shards = get("Job", "vizfs-shards")
    merge = get("Job", "vizfs-merge")
    serve = get("Deployment", "vizfs-serve")
    svc = get("Service", "vizfs")
    if errs:
        return errs

    if "ReadWriteMany" not in pvc["spec"]["accessModes"]:
        errs.append("PVC vizfs-data: accessModes must include ReadWriteMany")
    conf = json.loads(cm["data"]["config.json"])
    for k in ("dir_input", "statistics", "z_range"):
        if k not in conf:
            errs.append(f"ConfigMap config.json: no {k}")

    # every volume source exists; every pod mounts the config at /etc/vizfs
    for kind, o in (("Job", shards), ("Job", merge), ("Deployment", serve)):
        name = o["metadata"]["name"]
        vols = {v["name"]: v for v in o["spec"]["template"]["spec"]["volumes"]}
        for v in vols.values():
            c = v.get("persistentVolumeClaim", {}).get("claimName")
            if c and ("PersistentVolumeClaim", c) not in objs:
                errs.append(f"{kind}/{name}: volume {v['name']}: no PVC {c}")
            c = v.get("configMap", {}).get("name")
            if c and ("ConfigMap", c) not in objs:
                errs.append(f"{kind}/{name}: volume {v['name']}: no ConfigMap {c}")
        for ct in containers(o):
            for m in ct.get("volumeMounts", []):
                if m["name"] not in vols:
                    errs.append(f"{kind}/{name}/{ct['name']}: mount of unknown volume {m['name']}")
        sel = o["spec"].get("selector", {}).get("matchLabels")
        labels = o["spec"]["template"]["metadata"].get("labels", {})
        if sel and any(labels.get(k) != v for k, v in sel.items()):
            errs.append(f"{kind}/{name}: selector {sel} does not match the pod labels {labels}")

    def vizfs_args(o):
        ct = containers(o)[0]
        args = ct.get("args", [])
        if not args or args[0] not in entry_cmds:
            errs.append(f"{o['metadata']['name']}: args {args} do not start with a"
                        f" command of docker/entrypoint.sh {sorted(entry_cmds)}")
            return None
        if args[1] != "/etc/vizfs/config.json":
            errs.append(f"{o['metadata']['name']}: config is {args[1]}, the ConfigMap is"
                        " mounted at /etc/vizfs/config.json")
        return args

    sj = shards["spec"]
    sa = vizfs_args(shards)
    if sj.get("completionMode") != "Indexed":
        errs.append("Job vizfs-shards: completionMode must be Indexed"
                    " (JOB_COMPLETION_INDEX -> --shard)")
    if sa and sa[0] != "shard":
        errs.append(f"Job vizfs-shards: runs '{sa[0]}', want 'shard'")
    if sa and not (str(sj.get("completions")) == sa[2] == str(sj.get("parallelism"))):
        errs.append(f"Job vizfs-shards: completions {sj.get('completions')}, parallelism"
                    f" {sj.get('parallelism')} and the shard count {sa[2]} differ")
    if shards["spec"]["template"]["spec"].get("restartPolicy") not in ("Never", "OnFailure"):
        errs.append("Job vizfs-shards: restartPolicy must be Never or OnFailure")
    ma = vizfs_args(merge)
    if ma and sa:
        if ma[0] != "merge-shards":
            errs.append(f"Job vizfs-merge: runs '{ma[0]}', want 'merge-shards'")
        elif ma[2] != sa[2] or ma[3] != sa[3]:
            errs.append(f"Job vizfs-merge: merges {ma[2]} shards of {ma[3]}, the shard"
                        f" Job builds {sa[2]} into {sa[3]}")
        elif conf.get("vizfs_cache_dir") != ma[4]:
            errs.append(f"Job vizfs-merge: writes {ma[4]}, the config serves"
                        f" vizfs_cache_dir {conf.get('vizfs_cache_dir')}")

    # serving pod: FUSE container may mount and shares it with nginx
    pod = serve["spec"]["template"]["spec"]
    cts = {c["name"]: c for c in pod["containers"]}
    va = vizfs_args(serve)
    fuse = cts.get("vizfs")
    web = cts.get("nginx")
    if not fuse or not web:
        errs.append("Deployment vizfs-serve: needs containers vizfs and nginx")
        return errs
    if va and va[0] != "serve":
        errs.append(f"Deployment vizfs-serve: runs '{va[0]}', want 'serve'")
    sc = fuse.get("securityContext", {})
    caps = sc.get("capabilities", {}).get("add", [])
    if not sc.get("privileged") and "SYS_ADMIN" not in caps:
        errs.append("Deployment vizfs-serve/vizfs: needs privileged or SYS_ADMIN for mount(2)")
    bidir = [m for m in fuse.get("volumeMounts", [])
             if m.get("mountPropagation") == "Bidirectional"]
    if not bidir:
        errs.append("Deployment vizfs-serve/vizfs: no Bidirectional volume mount")
    elif not sc.get("privileged"):
        errs.append("Deployment vizfs-serve/vizfs: Bidirectional propagation needs privileged")
    elif va and not va[2].startswith(bidir[0]["mountPath"].rstrip("/") + "/"):
        errs.append(f"Deployment vizfs-serve/vizfs: mount point {va[2]} is not below the"
                    f" shared volume {bidir[0]['mountPath']}")
    else:
        shared = [m for m in web.get("volumeMounts", []) if m["name"] == bidir[0]["name"]]
        if not shared or shared[0].get("mountPropagation") not in ("HostToContainer",
                                                                     "Bidirectional"):
            errs.append("Deployment vizfs-serve/nginx: must mount volume"
                        f" {bidir[0]['name']} with mountPropagation HostToContainer")
    ports = {p.get("name") for c in pod["containers"] for p in c.get("ports", [])}
    for p in svc["spec"]["ports"]:
        if isinstance(p.get("targetPort"), str) and p["targetPort"] not in ports:
            errs.append(f"Service vizfs: targetPort {p['targetPort']} is no container port")
    pl = serve["spec"]["template"]["metadata"]["labels"]
    if any(pl.get(k) != v for k, v in svc["spec"]["selector"].items()):
        errs.append("Service vizfs: selector does not match the serving pods")
    return errs


def check_compose(c, stages):
    errs = []
    svcs = c.get("services", {})
    fs, web = svcs.get("vizfs"), svcs.get("nginx")
    if not fs or not web:
        return ["compose: needs services vizfs and nginx"]
    for name, s in svcs.items():
        b = s.get("build", {})
        if b.get("target") and b["target"] not in stages:
            errs.append(f"compose {name}: build target {b['target']} is not a stage"
                        f" of docker/Dockerfile {sorted(stages)}")
    if not any(str(d).split(":")[0] == "/dev/fuse" for d in fs.get("devices", [])):
        errs.append("compose vizfs: no /dev/fuse device")
    if "SYS_ADMIN" not in fs.get("cap_add", []):
        errs.append("compose vizfs: no cap_add SYS_ADMIN")

    def binds(s, prop):
        return [v for v in s.get("volumes", []) if isinstance(v, dict)
                and v.get("type") == "bind" and v.get("bind", {}).get("propagation") == prop]
    src = binds(fs, "rshared")
    if not src:
        errs.append("compose vizfs: no bind with propagation rshared")
    elif not any(v["source"] == src[0]["source"] for v in binds(web, "rslave")):
        errs.append(f"compose nginx: does not bind {src[0]['source']} with propagation rslave")
    cmd = fs.get("command", [])
    if not cmd or cmd[0] != "serve" or not cmd[2].startswith(src[0]["target"] + "/"):
        errs.append(f"compose vizfs: command {cmd} does not serve below {src[0]['target'] if src else '?'}")
    return errs


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "VZ_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
    kdir = os.path.join(root, "docker", "k8s")
    files = sorted(os.path.join(kdir, f) for f in os.listdir(kdir) if f.endswith(".yaml"))
    docs = load_docs(files)
    with open(os.path.join(root, "docker", "entrypoint.sh")) as fh:
        entry_cmds = set(re.findall(r"^([a-z-]+)\)$", fh.read(), re.M))
    with open(os.path.join(root, "docker", "Dockerfile")) as fh:
        stages = set(re.findall(r"^FROM \S+ AS (\S+)", fh.read(), re.M))
    with open(os.path.join(root, "docker", "compose.yaml")) as fh:
        compose = yaml.safe_load(fh)
    checks = failed = 0

    def report(what, errs, want_errors=False):
        nonlocal checks, failed
        checks += 1
        if bool(errs) != want_errors:
            failed += 1
            print(f"FAIL: {what}")
            for e in errs or ["(no error reported)"]:
                print(f"  {e}")

    print(f"{len(docs)} Kubernetes objects in {', '.join(os.path.basename(f) for f in files)};"
          f" entry point commands {sorted(entry_cmds)}; Dockerfile stages {sorted(stages)}")
    report("docker/k8s manifests", check_k8s(docs, entry_cmds))
    report("docker/compose.yaml", check_compose(compose, stages))
    for need in ("shard", "merge-shards", "serve"):
        report(f"entrypoint command {need}", [] if need in entry_cmds else [f"no {need}) case"])

    # The checker must catch broken manifests.
    def mutated(fn):
        d = copy.deepcopy(docs)
        for _, o in d:
            fn(o)
        return d

    def on(kind, name, fn):
        def f(o):
            if o["kind"] == kind and o["metadata"]["name"] == name:
                fn(o)
        return f
    broken = {
        "unknown field": on("Job", "vizfs-shards", lambda o: containers(o)[0].update(imagePullPolcy="Always")),
        "no containers": on("Deployment", "vizfs-serve", lambda o: o["spec"]["template"]["spec"].pop("containers")),
        "string for an integer": on("Job", "vizfs-shards", lambda o: o["spec"].update(completions="4")),
        "NonIndexed shard job": on("Job", "vizfs-shards", lambda o: o["spec"].update(completionMode="NonIndexed")),
        "shard count differs": on("Job", "vizfs-merge", lambda o: containers(o)[0]["args"].__setitem__(2, "3")),
        "unprivileged FUSE": on("Deployment", "vizfs-serve", lambda o: containers(o)[0].pop("securityContext")),
        "no propagation to nginx": on("Deployment", "vizfs-serve", lambda o: containers(o)[1]["volumeMounts"][0].pop("mountPropagation")),
        "ReadWriteOnce storage": on("PersistentVolumeClaim", "vizfs-data", lambda o: o["spec"].update(accessModes=["ReadWriteOnce"])),
        "missing ConfigMap": on("ConfigMap", "vizfs-config", lambda o: o["metadata"].update(name="other")),
    }
    for what, fn in broken.items():
        report(f"broken manifest rejected: {what}", check_k8s(mutated(fn), entry_cmds), True)
    c = copy.deepcopy(compose)
    c["services"]["nginx"]["volumes"][0]["bind"]["propagation"] = "private"
    report("broken compose rejected: no rslave", check_compose(c, stages), True)
    c = copy.deepcopy(compose)
    c["services"]["vizfs"]["cap_add"] = []
    report("broken compose rejected: no SYS_ADMIN", check_compose(c, stages), True)

    print(f"manifests: {checks} checks, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
