"""Syncthing: two instances on this machine, A sending a folder to B, over 127.0.0.1 only."""

import copy
import json
import os
import secrets
import subprocess
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import trees
from bench.timing import (
    SETUP_LIMIT,
    TRANSFER_LIMIT,
    Deadline,
    GaveUp,
    Stopwatch,
    Timed,
    log,
    poll,
)
from tests.appliance import free_port, stop_with_parent

FOLDER = "bench"
SYNTHETIC_DIRECTORY_SIZE = 128
# Nothing leaves the machine: no discovery, relays, NAT traversal, usage or crash reports,
# upgrades. Everything else (hashers, copiers, fsync, the file watcher) stays as it ships.
OPTIONS = {
    "globalAnnounceEnabled": "false",
    "localAnnounceEnabled": "false",
    "relaysEnabled": "false",
    "natEnabled": "false",
    "stunKeepaliveStartS": "0",
    "urAccepted": "-1",
    "startBrowser": "false",
    "crashReportingEnabled": "false",
    "autoUpgradeIntervalH": "0",
}


@dataclass
class Instance:
    name: str
    home: Path
    folder: Path
    folder_type: str
    gui_port: int
    listen_port: int
    api_key: str
    device_id: str = ""
    process: subprocess.Popen | None = None

    def api(self, method: str, path: str, timeout: float = 10, **query: str) -> Any:
        url = f"http://127.0.0.1:{self.gui_port}{path}"
        if query:
            url += "?" + urlencode(query)
        request = urllib.request.Request(
            url,
            method=method,
            headers={"X-API-Key": self.api_key},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def folder_status(self) -> dict:
        return self.api("GET", "/rest/db/status", folder=FOLDER)


def _new(root: Path, name: str, folder_type: str) -> Instance:
    home = root / f"st-{name}"
    instance = Instance(
        name=name,
        home=home,
        folder=root / f"folder-{name}",
        folder_type=folder_type,
        gui_port=free_port(),
        listen_port=free_port(),
        api_key=secrets.token_urlsafe(24),
    )
    subprocess.run(
        ["syncthing", "generate", "--home", str(home), "--no-default-folder"],
        check=True,
        capture_output=True,
        timeout=SETUP_LIMIT,
    )
    config = ET.parse(home / "config.xml").getroot()
    instance.device_id = config.find("device").get("id")
    # The folder and its marker exist before start, so that Syncthing takes it as a folder
    # that is there and empty, not one whose disk went missing.
    (instance.folder / ".stfolder").mkdir(parents=True)
    return instance


def _set(parent: ET.Element, tag: str, value: str) -> None:
    element = parent.find(tag)
    if element is None:
        element = ET.SubElement(parent, tag)
    element.text = value


def _configure(me: Instance, peer: Instance) -> None:
    """Edit config.xml before the first start: nothing is ever announced or dialled out."""
    path = me.home / "config.xml"
    document = ET.parse(path)
    config = document.getroot()
    gui = config.find("gui")
    gui.set("tls", "false")
    _set(gui, "address", f"127.0.0.1:{me.gui_port}")
    _set(gui, "apikey", me.api_key)
    options = config.find("options")
    for listen in options.findall("listenAddress"):
        options.remove(listen)
    _set(options, "listenAddress", f"tcp://127.0.0.1:{me.listen_port}")
    for tag, value in OPTIONS.items():
        _set(options, tag, value)
    # The other device and the folder start from Syncthing's own defaults for new ones.
    defaults = config.find("defaults")
    device = copy.deepcopy(defaults.find("device"))
    device.set("id", peer.device_id)
    device.set("name", peer.name)
    _set(device, "address", f"tcp://127.0.0.1:{peer.listen_port}")
    folder = copy.deepcopy(defaults.find("folder"))
    folder.set("id", FOLDER)
    folder.set("label", FOLDER)
    folder.set("path", str(me.folder))
    folder.set("type", me.folder_type)
    shared = copy.deepcopy(folder.find("device"))
    shared.set("id", peer.device_id)
    folder.insert(list(folder).index(folder.find("device")) + 1, shared)
    config.insert(0, folder)
    config.insert(list(config).index(gui), device)
    document.write(path)


def _start(instance: Instance) -> None:
    with open(instance.home / "syncthing.out", "wb") as out:
        instance.process = subprocess.Popen(
            [
                "syncthing",
                "serve",
                "--home",
                str(instance.home),
                "--no-browser",
                "--no-restart",  # one process, no monitor: the pid we hold is Syncthing
                "--no-upgrade",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1"},
            preexec_fn=stop_with_parent,
        )


def _stop(instance: Instance) -> None:
    if instance.process is None or instance.process.poll() is not None:
        return
    instance.process.terminate()
    try:
        instance.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        instance.process.kill()
        instance.process.wait(timeout=30)


def _answers(instance: Instance) -> bool:
    if instance.process.poll() is not None:
        output = (instance.home / "syncthing.out").read_text(errors="replace")
        raise RuntimeError(f"syncthing {instance.name} exited:\n{output[-3000:]}")
    try:
        return instance.api("GET", "/rest/system/ping") == {"ping": "pong"}
    except OSError:
        return False


def _connected(instance: Instance, peer: Instance) -> bool:
    connections = instance.api("GET", "/rest/system/connections")["connections"]
    return bool(connections.get(peer.device_id, {}).get("connected"))


def folder_state(instance: Instance) -> str:
    """The folder's state as Syncthing reports it ("idle", "scanning", "syncing"...), with
    its error if it has one (a full disk, a missing folder marker), "not answering" while
    the instance is still starting."""
    try:
        status = instance.folder_status()
    except OSError:
        return "not answering"
    state = str(status.get("state") or "unknown")
    error = status.get("error")
    return f"{state} ({error})" if error else state


def _wait_until_idle(instances: list[Instance], limit: float) -> None:
    """Until every instance's folder is idle; giving up names the state each was in."""
    states: dict[str, str] = {}

    def all_idle() -> bool:
        states.update((i.name, folder_state(i)) for i in instances)
        return all(state == "idle" for state in states.values())

    try:
        poll(all_idle, "syncthing folders to be idle", limit)
    except GaveUp as exc:
        seen = ", ".join(f"{name}: {state}" for name, state in states.items())
        raise GaveUp(f"{exc} (folder states: {seen})") from None


@contextmanager
def pair(root: Path) -> Iterator[tuple[Instance, Instance]]:
    """A (send-only) and B (receive-only), connected and idle; both stopped on the way out."""
    a = _new(root, "A", "sendonly")
    b = _new(root, "B", "receiveonly")
    _configure(a, b)
    _configure(b, a)
    with ExitStack() as stack:
        for instance in (a, b):
            stack.callback(_stop, instance)
            _start(instance)
        for instance in (a, b):
            poll(lambda i=instance: _answers(i), f"syncthing {instance.name}'s API", SETUP_LIMIT)
        poll(
            lambda: _connected(a, b) and _connected(b, a),
            "syncthing A and B to connect",
            SETUP_LIMIT,
        )
        _wait_until_idle([a, b], SETUP_LIMIT)
        yield a, b


def _b_has_all(b: Instance, spec: trees.TreeSpec) -> bool:
    status = b.folder_status()
    # Syncthing counts every directory as 128 bytes ("synthetic size") in localBytes.
    file_bytes = status["localBytes"] - SYNTHETIC_DIRECTORY_SIZE * status["localDirectories"]
    return (
        status["needFiles"] == 0 and status["localFiles"] == spec.files and file_bytes == spec.bytes
    )


def tree_transfer(a: Instance, b: Instance, staged: Path, spec: trees.TreeSpec) -> Timed:
    """From the tree appearing in A's folder to B reporting all of it."""
    deadline = Deadline(TRANSFER_LIMIT, "Syncthing tree transfer")
    trees.hand_over(staged, a.folder)
    watch = Stopwatch()
    # The scan request answers when A's scan is done; B pulls while it runs, or right after.
    a.api("POST", "/rest/db/scan", timeout=deadline.remaining(), folder=FOLDER)
    poll(lambda: _b_has_all(b, spec), "syncthing B to have the tree", deadline.remaining())
    return watch.stop()


def measure(root: Path, tree: Path, manifest: trees.Manifest, spec: trees.TreeSpec) -> Timed:
    log("Syncthing: starting A and B")
    try:
        with pair(root) as (a, b):
            staged = trees.staged_copy(tree, root / "staged")
            log("Syncthing: tree transfer")
            timed = tree_transfer(a, b, staged, spec)
        log(f"Syncthing: tree transfer took {timed.seconds:.1f} s; checking content")
        trees.check(b.folder / tree.name, manifest, "Syncthing")
        return timed
    finally:
        for data in [*root.glob("folder-*"), root / "staged"]:
            trees.set_aside(data)
