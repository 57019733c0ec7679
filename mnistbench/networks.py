"""Networks of the user's own: a Python file whose function takes the normalized image tensor
(one image shaped height x width x channels) and returns a tensor; the workflow adds the input,
its normalization, a flatten where needed and the classifier head (docs/configuration.md, "Your own network").

The config names each one under `models` ({file, function, params}). Planning reads the files
without running them (they exist, parse, define the function) and gives each a digest of what
defines it: the file's bytes, the function's name and the params, so that an edit retrains that
network's runs and only those, and two different definitions never compare as one setting. The
training process loads the file and calls the function (build_body). check_builds runs every
definition once on a symbolic input, in a process of its own, where a framework is imported.

May import: the standard library, mnistbench.data.dataset; keras only inside build_body and the
checking process.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

SHIPPED_MODELS = ("softmax", "mlp", "cnn")
DIGEST_LENGTH = 12


class NetworkError(ValueError):
    """A network file that cannot be used, phrased as one line naming the file."""


@dataclass(frozen=True)
class Network:
    """One entry of `models`: its name, the file (as resolve found it: relative to the working
    directory, where every job runs, or absolute), the function and its keyword arguments, and
    the digest of all three."""

    name: str
    file: str
    function: str
    params: dict
    digest: str
    # A function of the file that builds the optimizer, called with steps_per_epoch and epochs
    # (a schedule needs them); None: the run's optimizer and learning_rate settings.
    optimizer: str | None = None

    def definition(self) -> dict:
        """What a training job is given to build it."""
        return asdict(self)


def _digest(source: bytes, function: str, params: dict, optimizer: str | None) -> str:
    digest = hashlib.sha256(source)
    digest.update(b"\0" + function.encode() + b"\0" + json.dumps(params, sort_keys=True).encode())
    if optimizer is not None:  # absent, the digest stays what it was before this field existed
        digest.update(b"\0optimizer " + optimizer.encode())
    return digest.hexdigest()[:DIGEST_LENGTH]


def _defines(tree: ast.Module, function: str) -> bool:
    """Whether the module binds FUNCTION at its top level (a def, an assignment or an import)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == function for t in targets):
                return True
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name.split(".")[0]) == function for alias in node.names):
                return True
    return False


def resolve(file: str, workflow_folder=None) -> Path:
    """FILE as the config gives it: absolute, or relative to the working directory, or failing
    that to the workflow's folder (where the shipped networks/ are, whatever --directory says)."""
    path = Path(file)
    if path.is_absolute() or path.exists() or workflow_folder is None:
        return path
    shipped = Path(workflow_folder) / path
    return shipped if shipped.exists() else path


def read_network(name: str, entry: dict, workflow_folder=None) -> Network:
    """The network config key `models.<name>` defines, checked without running its file."""
    key = f"config key 'models.{name}'"
    if name in SHIPPED_MODELS:
        raise NetworkError(f"{key}: {name} is a shipped model; give your network another name")
    path = resolve(entry["file"], workflow_folder)
    function = entry.get("function", "build")
    params = entry.get("params") or {}
    try:
        source = path.read_bytes()
    except FileNotFoundError:
        raise NetworkError(f"{key}: {path} does not exist") from None
    except OSError as error:
        raise NetworkError(f"{key}: {path} cannot be read ({error.strerror})") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as error:
        raise NetworkError(f"{key}: {path} line {error.lineno}: {error.msg} (a syntax error)") from None
    except ValueError as error:  # null bytes
        raise NetworkError(f"{key}: {path} is not Python source ({error})") from None
    optimizer = entry.get("optimizer")
    for needed in filter(None, (function, optimizer)):
        if not _defines(tree, needed):
            raise NetworkError(f"{key}: {path} defines no function {needed!r} at its top level")
    digest = _digest(source, function, params, optimizer)
    return Network(name, str(path), function, dict(params), digest, optimizer)


def read_networks(models: dict, workflow_folder=None) -> dict[str, Network]:
    """Every network of the config's `models`, by name (see resolve for where files are)."""
    return {
        str(name): read_network(str(name), entry, workflow_folder) for name, entry in (models or {}).items()
    }


def build_body(definition: dict, x):
    """The user's function applied to the normalized image tensor X; its result, checked to be a
    tensor. Raises NetworkError in one line naming the network and its file where the file cannot
    be imported, or the function raises or returns no tensor."""
    import keras

    path = definition["file"]
    function = _load_function(definition)
    try:
        y = function(x, **definition["params"])
    except Exception as error:
        message = " ".join(str(error).split())[:300]  # Keras's messages run over many lines
        raise NetworkError(
            f"network {definition['name']} ({path}): {definition['function']}() raised "
            f"{type(error).__name__}: {message}"
        ) from error
    if not isinstance(y, keras.KerasTensor) and not keras.ops.is_tensor(y):
        raise NetworkError(
            f"network {definition['name']} ({path}): {definition['function']}() returned "
            f"{type(y).__name__}, not a tensor"
        )
    return y


def build_optimizer(definition: dict, run, steps_per_epoch: int):
    """The optimizer that the network's file builds for STEPS_PER_EPOCH and the run's epochs; it
    must be of the run's `optimizer` setting (adam, sgd...), so that labels and tables say true."""
    function = _load_function(definition, definition["optimizer"])
    name, path = definition["name"], definition["file"]
    try:
        optimizer = function(steps_per_epoch=steps_per_epoch, epochs=run.epochs)
    except Exception as error:
        raise NetworkError(
            f"network {name} ({path}): {definition['optimizer']}() raised {type(error).__name__}: {error}"
        ) from error
    built = type(optimizer).__name__.lower()
    if built != run.optimizer:
        raise NetworkError(
            f"network {name} ({path}): {definition['optimizer']}() built {type(optimizer).__name__}, "
            f"but the run's optimizer setting is {run.optimizer!r}; set optimizer: {built} for it"
        )
    return optimizer


def _load_function(definition: dict, function_name: str | None = None):
    path = definition["file"]
    function_name = function_name or definition["function"]
    module_name = f"mnistbench_network_{definition['name'].replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise NetworkError(f"network {definition['name']} ({path}): importing it raised {error!r}") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise NetworkError(f"network {definition['name']} ({path}): {function_name} is not a function")
    return function


def check_builds(networks: dict[str, Network], shapes: dict[str, list], cache: Path) -> list[str]:
    """One line per network that raises or returns no tensor on a symbolic image of each shape
    in SHAPES (by network name: the image shapes of the datasets it trains on); none where all
    build. Runs once per digest and shape (CACHE remembers those that built), in a process of
    its own with one backend, since this one imports no framework."""
    asked = []
    for name, network in networks.items():
        for shape in shapes.get(name, []):
            if not (cache / f"{network.digest}-{'x'.join(map(str, shape))}.ok").exists():
                asked.append({"definition": network.definition(), "shape": list(shape)})
    if not asked:
        return []
    backend = "jax" if importlib.util.find_spec("jax") else "tensorflow"
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = "import sys; from mnistbench.networks import _check_main; _check_main()"
    result = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(asked), capture_output=True, text=True, env=env
    )
    if result.returncode != 0:
        return [f"checking the networks failed: {(result.stderr.strip().splitlines() or ['?'])[-1]}"]
    problems = json.loads(result.stdout.strip().splitlines()[-1])
    cache.mkdir(parents=True, exist_ok=True)
    for item, problem in zip(asked, problems, strict=True):
        if problem is None:
            shape = "x".join(map(str, item["shape"]))
            (cache / f"{item['definition']['digest']}-{shape}.ok").touch()
    return [problem for problem in problems if problem is not None]


def _check_main() -> None:
    """The checking process: for each asked definition and shape, None or the one line."""
    import io
    from contextlib import redirect_stdout

    import keras

    answers = []
    for item in json.loads(sys.stdin.read()):
        with redirect_stdout(io.StringIO()):  # what the user's code prints stays out of the answer
            try:
                x = keras.layers.Rescaling(1 / 255)(keras.Input(shape=tuple(item["shape"])))
                build_body(item["definition"], x)
                answers.append(None)
            except NetworkError as error:
                name = item["definition"]["name"]
                answers.append(f"config key 'models.{name}': {error}")
    print(json.dumps(answers))
