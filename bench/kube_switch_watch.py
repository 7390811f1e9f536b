#!/usr/bin/env python3
"""Watches one Service and a set of pods through the API server (via `kubectl proxy`) and says when the
Service's selector moved to new pods, and when the last of those pods became Ready, as seen by this one
observer (the receive time of each watch event, wall clock in ms). bench/kube-peers.sh runs it around
each deploy, the same way for slipway and for the peer, so both are measured by the same clock.

Usage: kube_switch_watch.py PROXY NAMESPACE SERVICE POD_SELECTOR LABEL REPLICAS TIMEOUT_S
Prints one JSON line: {"switched_ms": …, "ready_ms": …, "value": …} (the new value of LABEL in the
selector), or {"error": …}.
"""
import json
import sys
import threading
import time
import urllib.parse
import urllib.request

proxy, namespace, service, pod_selector, label, replicas, timeout = sys.argv[1:8]
replicas, timeout = int(replicas), float(timeout)
base = f"{proxy}/api/v1/namespaces/{namespace}"
lock = threading.Condition()
state = {"initial": None, "value": None, "switched_ms": None, "ready": {}}


def now_ms():
    return int(time.time() * 1000)


def get(path):
    with urllib.request.urlopen(base + path, timeout=30) as r:
        return json.load(r)


def watch(path, resource_version, on_object):
    query = urllib.parse.urlencode({"watch": "1", "resourceVersion": resource_version})
    sep = "&" if "?" in path else "?"
    with urllib.request.urlopen(f"{base}{path}{sep}{query}", timeout=timeout + 30) as stream:
        for line in stream:
            event = json.loads(line)
            seen = now_ms()
            if event.get("type") in ("ADDED", "MODIFIED"):
                on_object(event["object"], seen)


def on_service(svc, seen):
    value = (svc["spec"].get("selector") or {}).get(label)
    with lock:
        if state["switched_ms"] is None and value != state["initial"]:
            state["value"], state["switched_ms"] = value, seen
        lock.notify_all()


def on_pod(pod, seen):
    value = pod["metadata"].get("labels", {}).get(label)
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    if not ready or pod["metadata"].get("deletionTimestamp"):
        return
    with lock:
        state["ready"].setdefault(value, {}).setdefault(pod["metadata"]["name"], seen)
        lock.notify_all()


svc = get(f"/services/{service}")
state["initial"] = (svc["spec"].get("selector") or {}).get(label)
pods = get("/pods?" + urllib.parse.urlencode({"labelSelector": pod_selector}))
for pod in pods["items"]:
    on_pod(pod, now_ms())
for target in (
    lambda: watch(f"/services?fieldSelector=metadata.name%3D{service}",
                  svc["metadata"]["resourceVersion"], on_service),
    lambda: watch("/pods?" + urllib.parse.urlencode({"labelSelector": pod_selector}),
                  pods["metadata"]["resourceVersion"], on_pod),
):
    threading.Thread(target=target, daemon=True).start()
print("watching", file=sys.stderr, flush=True)

deadline = time.time() + timeout
with lock:
    while True:
        value = state["value"]
        ready = state["ready"].get(value, {}) if state["switched_ms"] else {}
        if state["switched_ms"] and len(ready) >= replicas:
            # The pods Ready by the switch: those the Service moved to.
            print(json.dumps({"switched_ms": state["switched_ms"],
                              "ready_ms": sorted(ready.values())[replicas - 1],
                              "value": value}))
            break
        if time.time() > deadline:
            print(json.dumps({"error": f"no switch to {replicas} ready pods within {timeout}s",
                              "state": {k: v for k, v in state.items() if k != "ready"}}))
            sys.exit(1)
        lock.wait(0.5)
