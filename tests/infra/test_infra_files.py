"""Static checks of the deployment files under infra/.

Each file is parsed (YAML, JSON, or line by line for the Dockerfile) and the settings that
matter for a working, safe deployment are asserted: GPU resources on workers, services bound
to localhost or cluster-internal addresses, credentials only as references, version pins that
agree with constraints.txt and the installed Ray, and paths that exist in the repository.
Nothing is imported from Ray, Prefect or MLflow, so the whole module runs in well under a second
(`ganpipe.project` is, to resolve storage settings exactly as ganpipe does).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

RAY_CLUSTER = INFRA / "ray" / "cluster.yaml"
KUBERAY_CLUSTER = INFRA / "kuberay" / "raycluster.yaml"
KUBERAY_JOB = INFRA / "kuberay" / "rayjob.yaml"
DOCKERFILE = INFRA / "docker" / "Dockerfile"
PREFECT_YAML = INFRA / "prefect" / "prefect.yaml"
WORK_POOL = INFRA / "prefect" / "work-pool.json"
COMPOSE = INFRA / "mlflow" / "docker-compose.yaml"
SERVER_ENV = INFRA / "mlflow" / "server.env.example"
README = INFRA / "README.md"

SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE_KEY|API_KEY", re.I)
PLACEHOLDER_ONLY = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\})+$")
# scheme://user:password@host with a literal password (a ${VAR} reference is fine)
INLINE_CREDENTIAL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:(?!\$\{)[^\s/@'\"]+@", re.I)
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")


# ---------------------------------------------------------------------------------- helpers


def load_yaml(path: Path) -> Any:
    with path.open() as f:
        return yaml.safe_load(f)


def walk_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk_strings(k)
            yield from walk_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from walk_strings(v)


def ray_version() -> str:
    """Installed Ray version (what `ray.__version__` reports), without importing Ray."""
    try:
        return importlib.metadata.version("ray")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ray is not installed")


def constraint_pin(package: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        m = re.match(rf"^{re.escape(package)}==([^\s#]+)", line.strip(), re.I)
        if m:
            return m.group(1)
    raise AssertionError(f"constraints.txt has no exact pin for {package}")


def major_minor(version: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", version)
    assert m, f"not a version: {version!r}"
    return int(m.group(1)), int(m.group(2))


def resolve_compose_defaults(text: str) -> str:
    """`${VAR:-default}` / `${VAR-default}` -> default; other references -> empty string."""
    text = re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{[^}]*\}", "", text)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            keyword, _, args = buf.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"
    return out


def kuberay_cluster_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


def pod_specs(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "head", spec["headGroupSpec"]["template"]["spec"]
    for group in spec["workerGroupSpecs"]:
        yield group["groupName"], group["template"]["spec"]


def ray_container(pod: dict[str, Any]) -> dict[str, Any]:
    # KubeRay treats the first container as the Ray container.
    return pod["containers"][0]


def gpu_limit(container: dict[str, Any]) -> int:
    return int(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))


def entrypoint_sets(entrypoint: str) -> dict[str, str]:
    args = shlex.split(entrypoint)
    sets = {}
    for i, a in enumerate(args):
        if a == "--set":
            key, _, value = args[i + 1].partition("=")
            sets[key] = value
        elif a.startswith("--set="):
            key, _, value = a[len("--set=") :].partition("=")
            sets[key] = value
    return sets


CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
CRON_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def assert_valid_cron(expr: str) -> None:
    fields = expr.split()
    assert len(fields) == 5, f"cron {expr!r} must have 5 fields"
    for field, (lo, hi) in zip(fields, CRON_RANGES):
        assert CRON_FIELD.match(field), f"cron field {field!r} in {expr!r}"
        for n in re.findall(r"(?<![/\d])\d+", field):
            assert lo <= int(n) <= hi, f"cron value {n} out of range {lo}-{hi} in {expr!r}"
    # Prefect itself parses crons with cronsim (croniter in older releases): use what is there.
    if importlib.util.find_spec("croniter") is not None:
        from croniter import croniter

        assert croniter.is_valid(expr), expr
    elif importlib.util.find_spec("cronsim") is not None:
        from datetime import datetime

        from cronsim import CronSim

        CronSim(expr, datetime(2026, 1, 1))  # raises CronSimError when invalid


# ------------------------------------------------------------------------ all infra files


INFRA_FILES = [RAY_CLUSTER, KUBERAY_CLUSTER, KUBERAY_JOB, DOCKERFILE, PREFECT_YAML, WORK_POOL, COMPOSE, SERVER_ENV, README]


@pytest.mark.parametrize("path", INFRA_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_file_exists_and_has_no_literal_credentials(path: Path) -> None:
    assert path.is_file(), f"missing {path}"
    text = path.read_text()
    assert not AWS_KEY_ID.search(text), f"{path.name}: looks like an AWS access key id"
    assert "-----BEGIN" not in text, f"{path.name}: contains a PEM block"
    m = INLINE_CREDENTIAL.search(text)
    assert m is None, f"{path.name}: URI with an inline password: {m.group(0)!r}"


# ------------------------------------------------------------------- Ray cluster launcher


@pytest.fixture(scope="module")
def ray_cluster() -> dict[str, Any]:
    return load_yaml(RAY_CLUSTER)


def test_ray_cluster_core_keys(ray_cluster: dict[str, Any]) -> None:
    assert isinstance(ray_cluster["cluster_name"], str) and ray_cluster["cluster_name"]
    assert isinstance(ray_cluster["max_workers"], int) and ray_cluster["max_workers"] >= 1
    assert ray_cluster["provider"]["type"] == "aws"
    types = ray_cluster["available_node_types"]
    assert ray_cluster["head_node_type"] in types
    assert ray_cluster["file_mounts"] == {}


def test_ray_cluster_has_gpu_workers_and_cpu_head(ray_cluster: dict[str, Any]) -> None:
    types = ray_cluster["available_node_types"]
    head = ray_cluster["head_node_type"]
    assert types[head].get("resources", {}).get("GPU", 0) == 0, "the head node is CPU-only"
    gpu_types = {name: t for name, t in types.items() if name != head and t.get("resources", {}).get("GPU", 0) >= 1}
    assert gpu_types, "no worker node type offers a GPU"
    for name, t in types.items():
        if name == head:
            continue
        assert 0 <= t.get("min_workers", 0) <= t["max_workers"] <= ray_cluster["max_workers"], name
        assert t["node_config"]["InstanceType"], name
    # With explicit `resources`, the autoscaler only knows about GPUs that are declared: a
    # GPU instance type without "GPU" would never be launched for GPU work.
    for name, t in types.items():
        family = t["node_config"]["InstanceType"].split(".")[0]
        if re.fullmatch(r"(g4dn|g5|g6e?|p3|p4de?|p5e?)", family) and "resources" in t:
            assert t["resources"].get("GPU", 0) >= 1, f"{name} ({family}) does not declare its GPUs"


def test_ray_cluster_services_bind_localhost(ray_cluster: dict[str, Any]) -> None:
    head_cmds = " ".join(ray_cluster["head_start_ray_commands"])
    assert "ray start --head" in head_cmds
    assert "--dashboard-host=127.0.0.1" in head_cmds
    worker_cmds = " ".join(ray_cluster["worker_start_ray_commands"])
    assert "ray start --address=" in worker_cmds
    for cmd in walk_strings(ray_cluster):
        assert "0.0.0.0" not in cmd, f"binds all interfaces: {cmd!r}"


def test_ray_cluster_docker_image_and_setup(ray_cluster: dict[str, Any]) -> None:
    docker = ray_cluster["docker"]
    assert docker["image"].rsplit("/", 1)[-1] == "ganpipe-train:latest"
    setup = ray_cluster["setup_commands"]
    assert isinstance(setup, list) and setup and all(isinstance(c, str) and c.strip() for c in setup)
    # The image's ENTRYPOINT is `ganpipe`, but the launcher runs the node container with `bash`.
    entrypoint = [args for kw, args in dockerfile_instructions(DOCKERFILE) if kw == "ENTRYPOINT"]
    if entrypoint and json.loads(entrypoint[-1]):
        assert any(o.split()[0] in ("--entrypoint=", "--entrypoint=''", '--entrypoint=""') for o in docker["run_options"])


def test_ray_cluster_shared_data_mount(ray_cluster: dict[str, Any]) -> None:
    mounts = [o.split()[1] for o in ray_cluster["docker"]["run_options"] if o.split()[0] == "-v"]
    targets = {m.split(":")[1]: m.split(":")[0] for m in mounts}
    assert "/app/prepared" in targets, "prepared data must be a host mount shared by all nodes"
    host_dir = targets["/app/prepared"]
    init = " ".join(ray_cluster["initialization_commands"])
    assert f"mkdir -p {host_dir}" in init, "the host directory must exist before docker mounts it"


def test_ray_cluster_matches_ray_schema(ray_cluster: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = importlib.util.find_spec("ray")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("ray is not installed")
    schema_path = Path(list(spec.submodule_search_locations)[0]) / "autoscaler" / "ray-schema.json"
    if not schema_path.exists():
        pytest.skip("this ray build ships no autoscaler schema")
    jsonschema.validate(ray_cluster, json.loads(schema_path.read_text()))


# --------------------------------------------------------------------------------- KubeRay


@pytest.fixture(scope="module", params=[KUBERAY_CLUSTER, KUBERAY_JOB], ids=["raycluster", "rayjob"])
def kuberay(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_yaml(request.param)


def test_kuberay_kinds() -> None:
    assert load_yaml(KUBERAY_CLUSTER)["kind"] == "RayCluster"
    assert load_yaml(KUBERAY_JOB)["kind"] == "RayJob"


def test_kuberay_api_and_ray_version(kuberay: dict[str, Any]) -> None:
    assert kuberay["apiVersion"] == "ray.io/v1"
    spec = kuberay_cluster_spec(kuberay)
    declared = spec["rayVersion"]
    assert isinstance(declared, str), "quote rayVersion so YAML keeps it a string"
    assert major_minor(declared) == major_minor(ray_version())
    assert declared == constraint_pin("ray")


def test_kuberay_gpu_workers_cpu_head(kuberay: dict[str, Any]) -> None:
    spec = kuberay_cluster_spec(kuberay)
    pods = dict(pod_specs(spec))
    assert gpu_limit(ray_container(pods.pop("head"))) == 0
    assert pods, "no worker groups"
    for name, pod in pods.items():
        c = ray_container(pod)
        assert gpu_limit(c) >= 1, f"worker group {name} has no nvidia.com/gpu limit"
        requested = c["resources"].get("requests", {}).get("nvidia.com/gpu")
        assert requested is None or int(requested) == gpu_limit(c), "GPU requests must equal limits"
    # The head advertises no GPU, so no training worker or GPU evaluation is placed there.
    assert str(spec["headGroupSpec"]["rayStartParams"].get("num-gpus")) == "0"


def _gib(quantity: str) -> float:
    units = {"Ki": 2**-20, "Mi": 2**-10, "Gi": 1, "Ti": 2**10}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)", str(quantity))
    assert m, f"unexpected quantity {quantity!r}"
    return float(m.group(1)) * units[m.group(2)]


def test_kuberay_one_pod_per_gpu_node_with_nccl_settings(kuberay: dict[str, Any]) -> None:
    """A worker pod holds all GPUs of its node (so NCCL uses NVLink/shared memory inside it),
    at most one such pod per node, NCCL told which interface to use, and /dev/shm big enough."""
    spec = kuberay_cluster_spec(kuberay)
    for group in spec["workerGroupSpecs"]:
        name, pod = group["groupName"], group["template"]["spec"]
        c = ray_container(pod)
        gpus = gpu_limit(c)
        assert gpus >= 4, f"{name}: {gpus} GPU(s) per pod; give one pod all GPUs of its node"
        assert str(group.get("rayStartParams", {}).get("num-gpus", gpus)) == str(gpus), name
        labels = group["template"]["metadata"]["labels"]
        anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert any(t["topologyKey"] == "kubernetes.io/hostname" and t["labelSelector"]["matchLabels"].items() <= labels.items() for t in anti), name
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env.get("NCCL_SOCKET_IFNAME"), f"{name}: NCCL_SOCKET_IFNAME unset"
        shm = {m["name"] for m in c.get("volumeMounts", []) if m["mountPath"] == "/dev/shm"}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        (vol,) = [vols[n] for n in shm]
        assert vol["emptyDir"]["medium"] == "Memory"
        assert _gib(vol["emptyDir"]["sizeLimit"]) >= 4 * gpus, f"{name}: /dev/shm too small for {gpus} GPUs"
        assert _gib(vol["emptyDir"]["sizeLimit"]) < _gib(c["resources"]["limits"]["memory"]), name


def test_kuberay_head_not_exposed(kuberay: dict[str, Any]) -> None:
    head = kuberay_cluster_spec(kuberay)["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") == "ClusterIP"
    assert head.get("enableIngress", False) is False


def test_kuberay_image_env_and_secrets(kuberay: dict[str, Any]) -> None:
    roots = {e["value"] for _, pod in pod_specs(kuberay_cluster_spec(kuberay)) for e in ray_container(pod).get("env", []) if e["name"] == "GANPIPE_STORAGE"}
    assert len(roots) == 1, f"pods name different storage roots: {sorted(roots)}"
    for name, pod in pod_specs(kuberay_cluster_spec(kuberay)):
        c = ray_container(pod)
        assert c["image"].rsplit("/", 1)[-1] == "ganpipe-train:latest", name
        env = {e["name"]: e for e in c.get("env", [])}
        tracking = env["MLFLOW_TRACKING_URI"]
        assert "value" not in tracking, f"{name}: MLFLOW_TRACKING_URI may hold credentials: use a Secret"
        assert tracking.get("valueFrom", {}).get("secretKeyRef", {}).get("key"), name
        assert env["GANPIPE_STORAGE"]["value"].startswith("s3://"), name
        for var, e in env.items():
            if SECRET_NAME.search(var):
                assert "value" not in e and "secretKeyRef" in e.get("valueFrom", {}), f"{name}: {var} must come from a Secret"


def test_kuberay_working_dir_matches_image(kuberay: dict[str, Any]) -> None:
    workdir = [args for kw, args in dockerfile_instructions(DOCKERFILE) if kw == "WORKDIR"][-1]
    for name, pod in pod_specs(kuberay_cluster_spec(kuberay)):
        assert ray_container(pod).get("workingDir", workdir) == workdir, name


def test_kuberay_shared_data_volume(kuberay: dict[str, Any]) -> None:
    """Driver (head) and training workers must see the prepared data at the same path."""
    seen = set()
    for name, pod in pod_specs(kuberay_cluster_spec(kuberay)):
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v}
        mounts = {m["mountPath"]: m["name"] for m in ray_container(pod).get("volumeMounts", [])}
        assert "/app/prepared" in mounts, name
        assert mounts["/app/prepared"] in claims, f"{name}: /app/prepared is not a PVC"
        seen.add(claims[mounts["/app/prepared"]])
    assert len(seen) == 1, f"head and workers mount different claims: {seen}"


@pytest.fixture(scope="module")
def rayjob() -> dict[str, Any]:
    return load_yaml(KUBERAY_JOB)


def test_rayjob_entrypoint(rayjob: dict[str, Any]) -> None:
    entrypoint = rayjob["spec"]["entrypoint"]
    assert entrypoint.startswith("ganpipe pipeline run ")
    args = shlex.split(entrypoint)
    config = args[3]
    assert config.startswith("configs/") and config.endswith((".yaml", ".yml")), config
    assert (ROOT / config).is_file(), f"RayJob runs {config}, which does not exist"
    sets = entrypoint_sets(entrypoint)
    assert sets.get("train.use_gpu") == "true"
    assert int(sets["train.num_workers"]) >= 1


def test_rayjob_lifecycle(rayjob: dict[str, Any]) -> None:
    spec = rayjob["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert "rayClusterSpec" in spec and "clusterSelector" not in spec


def test_rayjob_capacity_and_storage(rayjob: dict[str, Any], tmp_path: Path) -> None:
    """The cluster must have a GPU for every training worker, and shared checkpoint storage."""
    spec = rayjob["spec"]
    sets = entrypoint_sets(spec["entrypoint"])
    num_workers = int(sets["train.num_workers"])
    cluster = spec["rayClusterSpec"]
    gpus = sum(int(g.get("maxReplicas", g.get("replicas", 0))) * gpu_limit(ray_container(g["template"]["spec"])) for g in cluster["workerGroupSpecs"])
    assert gpus >= num_workers, f"{num_workers} GPU workers requested, the cluster has {gpus} GPUs"
    if not cluster.get("enableInTreeAutoscaling", False):
        fixed = sum(int(g.get("replicas", 0)) * gpu_limit(ray_container(g["template"]["spec"])) for g in cluster["workerGroupSpecs"])
        assert fixed >= num_workers, "without autoscaling, `replicas` must provide every GPU up front"
    if num_workers > 1:
        assert not any(k.startswith("train.storage") for k in sets), "train.storage moved to storage.runs"
        storage = {k.partition(".")[2]: v for k, v in sets.items() if k.startswith("storage.")}
        assert storage.get("root") or storage.get("runs"), "multi-worker runs need storage.root (or storage.runs) on shared storage"
        head_env = {e["name"]: e for e in ray_container(cluster["headGroupSpec"]["template"]["spec"]).get("env", [])}
        shared = head_env["GANPIPE_STORAGE"]["value"]
        if "root" in storage:
            assert storage["root"] == shared, "storage.root and GANPIPE_STORAGE disagree"
        # Where ganpipe itself puts checkpoints and sweeps for this entrypoint (in the image's
        # /app, which has no ganpipe.yaml; tmp_path stands in for it).
        from ganpipe.config import StorageConfig
        from ganpipe.project import Project, is_remote

        project = Project.load(tmp_path, StorageConfig(**storage), env={})
        assert is_remote(project.runs_storage), f"checkpoints would go to a node-local {project.runs_storage}"
        assert project.runs_storage.startswith(shared.rstrip("/") + "/"), f"checkpoints {project.runs_storage} are not under GANPIPE_STORAGE {shared}"


def test_infra_storage_settings_are_current() -> None:
    """`train.storage` moved to `storage.runs` (a config holding it fails to load); every
    `storage.KEY` that the infra files set, in manifests, comments or the README, is a real key."""
    from ganpipe.config import StorageConfig

    for path in INFRA_FILES:
        text = path.read_text()
        assert "train.storage" not in text, f"{path.relative_to(ROOT)}: train.storage moved to storage.runs"
        for key in re.findall(r"--set[= ]storage\.(\w+)=", text):
            assert key in StorageConfig.model_fields, f"{path.relative_to(ROOT)}: no setting storage.{key}"


# ------------------------------------------------------------------------------ Dockerfile


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE)


def test_dockerfile_base_image(dockerfile: list[tuple[str, str]]) -> None:
    first = next(kw for kw, _ in dockerfile if kw != "ARG")
    assert first == "FROM"
    image = [args for kw, args in dockerfile if kw == "FROM"][-1].split()[0]
    if image.startswith("rayproject/ray:"):
        tag = image.split(":", 1)[1]
        assert tag.startswith(constraint_pin("ray") + "-"), f"base image Ray {tag} != constraints.txt"
        assert "py311" in tag and "gpu" in tag, tag
    else:
        assert image.startswith("nvidia/cuda:"), image


def test_dockerfile_user_entrypoint(dockerfile: list[tuple[str, str]]) -> None:
    users = [args.split(":")[0] for kw, args in dockerfile if kw == "USER"]
    assert users, "no USER instruction: the image would run as root"
    assert users[-1] not in ("root", "0"), "the final USER must not be root"
    entrypoints = [json.loads(args) for kw, args in dockerfile if kw == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1] == ["ganpipe"]


def test_dockerfile_copies_and_installs(dockerfile: list[tuple[str, str]]) -> None:
    copied: set[str] = set()
    for kw, args in dockerfile:
        if kw == "COPY":
            parts = [p for p in args.split() if not p.startswith("--")]
            copied.update(p.rstrip("/") for p in parts[:-1])
    for needed in ("pyproject.toml", "constraints.txt", "ganpipe", "flows", "configs", "benchmarks"):
        assert needed in copied, f"Dockerfile does not copy {needed}"
    for src in copied:
        assert (ROOT / src).exists(), f"COPY source {src} is not in the repository"
    commands = [c.strip() for kw, args in dockerfile if kw == "RUN" for c in re.split(r"&&|;", args)]
    project_installs = [c for c in commands if "pip install" in c and re.search(r"-e \"?\.(\[[\w,]+\])?\"?(\s|$)", c)]
    assert project_installs, "the project is not installed with `pip install -e .`"
    assert any("s3" in c for c in project_installs), "the image lacks the S3 clients (ganpipe[s3]) for DVC and MLflow"
    for c in project_installs:
        assert "-c constraints.txt" in c, f"install without the constraints file: {c!r}"
    # Installing the project before its sources are copied would fail.
    order = [kw + " " + args for kw, args in dockerfile]
    copy_pkg = next(i for i, line in enumerate(order) if line.startswith("COPY") and "ganpipe/" in line)
    install = next(i for i, line in enumerate(order) if line.startswith("RUN") and re.search(r"-e \"?\.", line))
    assert copy_pkg < install


def test_dockerfile_fails_without_a_cuda_torch(dockerfile: list[tuple[str, str]]) -> None:
    """The build stops when pip took a CPU-only torch; the check runs right after torch is installed."""
    runs = [args for kw, args in dockerfile if kw == "RUN"]
    torch_install = next(i for i, a in enumerate(runs) if re.search(r"pip install .*torch==", a))
    check = runs[torch_install]
    assert "torch.version.cuda" in check and "sys.exit" in check, check
    # The check exits non-zero for a CPU build: run its Python with a CPU-like torch.
    code = re.search(r'python -c "([^"]+)"', check).group(1)
    fake = "import sys, types; t = types.ModuleType('torch'); t.__version__ = '2.13.0+cpu'; t.version = types.SimpleNamespace(cuda=None); sys.modules['torch'] = t\n"
    r = subprocess.run([sys.executable, "-c", fake + code.replace("; ", "\n")], capture_output=True, text=True)
    assert r.returncode != 0 and "is not a CUDA build" in r.stderr, r
    ok = fake.replace("cuda=None", "cuda='12.8'")
    assert subprocess.run([sys.executable, "-c", ok + code.replace("; ", "\n")]).returncode == 0


# --------------------------------------------------------------------------------- Prefect


@pytest.fixture(scope="module")
def prefect_cfg() -> dict[str, Any]:
    return load_yaml(PREFECT_YAML)


def test_prefect_yaml_layout(prefect_cfg: dict[str, Any]) -> None:
    assert prefect_cfg["name"]
    assert major_minor(str(prefect_cfg["prefect-version"])) == major_minor(constraint_pin("prefect"))
    steps = [next(iter(step)) for step in prefect_cfg["pull"]]
    assert "prefect.deployments.steps.set_working_directory" in steps
    names = {d["name"] for d in prefect_cfg["deployments"]}
    assert names == {"ganpipe-nightly", "ganpipe-weekly-sweep"}


def test_prefect_deployments_schedules_and_pool(prefect_cfg: dict[str, Any]) -> None:
    for d in prefect_cfg["deployments"]:
        assert d["work_pool"]["name"] == "ganpipe-pool", d["name"]
        assert d["schedules"], d["name"]
        for s in d["schedules"]:
            assert_valid_cron(s["cron"])
            assert s["timezone"] == "UTC"
    crons = {d["name"]: d["schedules"][0]["cron"] for d in prefect_cfg["deployments"]}
    assert crons == {"ganpipe-nightly": "0 3 * * *", "ganpipe-weekly-sweep": "0 4 * * 0"}


def test_cron_validator_rejects_bad_expressions() -> None:
    for bad in ("0 3 * *", "61 3 * * *", "0 24 * * *", "0 3 * * mon-fri-x"):
        with pytest.raises(Exception):
            assert_valid_cron(bad)


def test_prefect_entrypoints(prefect_cfg: dict[str, Any]) -> None:
    for d in prefect_cfg["deployments"]:
        path, sep, func = d["entrypoint"].partition(":")
        assert sep and func.isidentifier(), d["entrypoint"]
        assert path.startswith("flows/") and path.endswith(".py"), d["entrypoint"]


@pytest.mark.parametrize("deployment", ["ganpipe-nightly", "ganpipe-weekly-sweep"])
def test_prefect_flow_and_parameter_files_exist(prefect_cfg: dict[str, Any], deployment: str) -> None:
    """The flow function exists (checked with ast, not imported) and accepts every parameter."""
    d = next(d for d in prefect_cfg["deployments"] if d["name"] == deployment)
    path, _, func = d["entrypoint"].partition(":")
    flow_file = ROOT / path
    assert flow_file.is_file(), f"{deployment}: {path} does not exist"
    tree = ast.parse(flow_file.read_text())
    fn = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == func), None)
    assert fn is not None, f"{path} defines no top-level function {func}"
    assert fn.decorator_list, f"{func} is not decorated (expected @flow)"
    accepted = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    for name, value in d["parameters"].items():
        assert name in accepted or fn.args.kwarg is not None, f"{func} has no parameter {name}"
        if name.endswith("_path"):
            assert (ROOT / value).is_file(), f"{deployment}: {name}={value} does not exist"


@pytest.fixture(scope="module")
def work_pool() -> dict[str, Any]:
    return json.loads(WORK_POOL.read_text())


def test_work_pool_template(work_pool: dict[str, Any]) -> None:
    job, variables = work_pool["job_configuration"], work_pool["variables"]
    assert variables["type"] == "object"
    # The process worker's job configuration fields.
    assert set(job) == {"command", "env", "labels", "name", "stream_output", "working_dir"}
    # What the Prefect API checks on `work-pool create`: every placeholder is a declared variable.
    placeholders = set(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", json.dumps(job)))
    assert placeholders and placeholders <= set(variables["properties"])
    props = variables["properties"]
    assert isinstance(props["stream_output"].get("default", True), bool)
    for key in props["env"].get("default", {}):
        assert not SECRET_NAME.search(key), f"secret {key} in the work pool template"


# ---------------------------------------------------------------------------------- MLflow


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def mlflow_command(compose: dict[str, Any]) -> list[str]:
    cmd = compose["services"]["mlflow"]["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def env_map(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "mlflow"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres")
    cmd = mlflow_command(compose)
    assert cmd[:2] == ["mlflow", "server"]
    dest = cmd[cmd.index("--artifacts-destination") + 1]
    assert dest.startswith("s3://")
    env = env_map(services["mlflow"])
    backend = cmd[cmd.index("--backend-store-uri") + 1] if "--backend-store-uri" in cmd else env.get("MLFLOW_BACKEND_STORE_URI", "")
    assert backend.startswith("postgresql://") and "@postgres:" in backend
    assert "MLFLOW_S3_ENDPOINT_URL" in env, "S3-compatible store needs an endpoint URL"


def test_compose_binds_loopback_by_default(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert not services["postgres"].get("ports"), "PostgreSQL must not be published"
    cmd = mlflow_command(compose)
    host = cmd[cmd.index("--host") + 1] if "--host" in cmd else "127.0.0.1"
    published = services["mlflow"].get("ports", [])
    if host != "127.0.0.1":
        # Listening on the container's own network only makes sense with a published port.
        assert published, "mlflow listens on all container interfaces but publishes no port"
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert isinstance(port, str), f"{name}: use 'HOST_IP:HOST:CONTAINER' strings"
            resolved = resolve_compose_defaults(port)
            assert resolved.startswith("127.0.0.1:"), f"{name}: {port} is published beyond localhost by default"


def test_compose_credentials_are_placeholders(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for var, value in env_map(svc).items():
            if SECRET_NAME.search(var) or var.endswith("_USER"):
                assert PLACEHOLDER_ONLY.match(value), f"{name}: {var} must be a ${{VAR}} placeholder, got {value!r}"


def test_server_env_example_covers_required_vars() -> None:
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?", text))
    assert required, "compose should fail fast on missing credentials (${VAR:?message})"
    example: dict[str, str] = {}
    for line in SERVER_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    missing = required - set(example)
    assert not missing, f"server.env.example lacks {sorted(missing)}"
    for key, value in example.items():
        if SECRET_NAME.search(key):
            assert value == "", f"server.env.example must leave {key} empty"


# ---------------------------------------------------------------------------------- README


def test_readme_steps_and_references() -> None:
    text = README.read_text()
    steps = re.findall(r"^### (\d+)\. ", text, re.M)
    assert [int(s) for s in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 6
    for ref in set(re.findall(r"infra/[\w./-]+\.(?:yaml|json|md|example)|infra/docker/Dockerfile", text)):
        assert (ROOT / ref).is_file(), f"README refers to missing {ref}"
    for needed in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "PREFECT_API_URL", "dvc remote add -d storage s3://", "storage.root", "ganpipe.yaml", "GANPIPE_PROJECT", "--project", "prefect deploy --all"):
        assert needed in text, f"README does not mention {needed}"
    assert re.search(r"^## Sizing", text, re.M)
