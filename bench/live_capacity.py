"""How many live streams one server holds: ``python -m bench.live_capacity``.

Headless WebRTC clients (aiortc, no browser) stream a smiling face to a server that runs the
app's own live processing, exactly as the Live page wires it: streamlit-webrtc's
``AsyncVideoProcessTrack`` (which hands the callback only the newest frame and drops the
rest) around ``app_lib.live.processor.LiveProcessor``, one per stream, over one shared model, connected
through the app's relay (``app_lib.live.relay.NewestFrameRelay``; ``--relay buffered``:
streamlit-webrtc's own, to compare). 1, 2, 4, 6, 8, 10, 12 streams at once, at 15 and at 25
frames/s, with Haar and with BlazeFace. Per step:

- frames/s analysed per stream, counted at the client: distinct frames that come back
  annotated. Each sent frame carries its number in a strip of black and white blocks, and the
  client reads it back from the returned video;
- end-to-end latency per analysed frame (sent, analysed, annotated, encoded, received):
  median and 95th percentile;
- the server's CPU (cores busy) and memory (RSS), and memory per stream above the idle server.

The clients cost little: the face video is VP8-encoded once, and its packets are sent as they
are (aiortc's pre-encoded path). They still decode what comes back, on the same machine, so
they take some CPU from the server. Server and clients run in separate processes, in a
network namespace with only loopback when run as root (nothing leaves it), else on this
machine's own addresses. Writes ``bench/live_capacity.json``; ``python -m bench.docs`` puts
the tables into docs/sharing.md and the README.

    python -m bench.live_capacity            # the full run (about 17 minutes on 2 cores)
    python -m bench.live_capacity --quick    # 1 and 2 streams, Haar, 15 frames/s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import queue
import shutil
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from fer_core.faces import DETECTORS, HAAR

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "live_capacity.json"
NAMESPACE_ENV = "FER_BENCH_IN_NAMESPACE"

WIDTH, HEIGHT = 640, 480
LOOP_FRAMES = 120  # the face video loops every 120 frames (8 s at 15 frames/s)
BITS = 12  # frame numbers up to 4095 in the strip
BLOCK = 24  # each bit a 24x24 block along the bottom-left edge
STEPS = (1, 2, 4, 6, 8, 10, 12)
FRAME_RATES = (15, 25)
WARMUP_S = 6.0
MEASURE_S = 15.0


# ----------------------------------------------------------------------------- the face video


def face_frame() -> np.ndarray:
    """The smiling astronaut, 640x480, as the browser tests' fake webcam shows her."""
    import cv2
    import skimage.data

    face = skimage.data.astronaut()[0:255, 60:400]
    return cv2.resize(face, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def write_number(rgb: np.ndarray, number: int) -> np.ndarray:
    """``rgb`` with ``number`` in the strip: bit i is block i, white for 1, black for 0."""
    out = rgb.copy()
    top = HEIGHT - BLOCK
    for bit in range(BITS):
        value = 255 if (number >> bit) & 1 else 0
        out[top:HEIGHT, bit * BLOCK : (bit + 1) * BLOCK] = value
    return out


def read_number(rgb: np.ndarray) -> int | None:
    """The number in a returned frame's strip (block centres, thresholded), or None when the
    frame is not one of ours (its size changed: WebRTC lowered the resolution)."""
    if rgb.shape[0] != HEIGHT or rgb.shape[1] != WIDTH:
        return None
    top = HEIGHT - BLOCK
    number = 0
    for bit in range(BITS):
        block = rgb[top + 6 : HEIGHT - 6, bit * BLOCK + 6 : (bit + 1) * BLOCK - 6]
        if float(block.mean()) > 127:
            number |= 1 << bit
    return number


def encoded_loop(fps: int) -> list[bytes]:
    """The face video's VP8 packets, ``LOOP_FRAMES`` frames, each with its number, a key
    frame first (so the loop can restart there)."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = WIDTH, HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = 900_000
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    codec.gop_size = LOOP_FRAMES
    base = face_frame()
    packets: list[bytes] = []
    for index in range(LOOP_FRAMES):
        frame = av.VideoFrame.from_ndarray(write_number(base, index), format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, fps)
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets.extend(bytes(p) for p in codec.encode(None))
    if len(packets) != LOOP_FRAMES:
        raise RuntimeError(f"the VP8 encoder gave {len(packets)} packets for {LOOP_FRAMES} frames")
    return packets


# ----------------------------------------------------------------------------- the server


def server_main(address, authkey: bytes, detector: str, ready, relay_kind: str = "newest") -> None:
    """One process, like one app server: the shipped model, and for every offer a peer whose
    returned video is the app's live processing of the received one, wired as
    streamlit-webrtc wires it: the received track through the relay into the processing
    track, and that through the relay to the encoder. The relay is the app's
    (``NewestFrameRelay``), or with ``relay_kind="buffered"`` streamlit-webrtc's default."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging
    from multiprocessing.connection import Listener

    logging.basicConfig(level=logging.WARNING, format="server %(levelname)s %(name)s: %(message)s")

    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from streamlit_webrtc.models import CallbackAttachableProcessor
    from streamlit_webrtc.process import AsyncVideoProcessTrack

    from app_lib.live.processor import LiveProcessor
    from app_lib.live.relay import NewestFrameRelay
    from fer_core import load_model

    model = load_model()
    model.predict_faces(np.zeros((1, 48, 48), dtype=np.uint8))  # load the fast path now
    listener = Listener(address, authkey=authkey)
    ready.set()
    peers: list = []
    relays: list = []  # made on the server's loop, at the first offer

    async def answer(offer: dict) -> dict:
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        peers.append(peer)

        if not relays:
            relays.append(NewestFrameRelay() if relay_kind == "newest" else MediaRelay())
        relay = relays[0]

        @peer.on("track")
        def on_track(track):
            processor = LiveProcessor(model, smoothing=0.5, detector=detector)
            processed = AsyncVideoProcessTrack(
                relay.subscribe(track), CallbackAttachableProcessor(processor, None, None)
            )
            peer.addTrack(relay.subscribe(processed))

        await peer.setRemoteDescription(RTCSessionDescription(**offer))
        await peer.setLocalDescription(await peer.createAnswer())
        return {"sdp": peer.localDescription.sdp, "type": peer.localDescription.type}

    async def close_all() -> None:
        for peer in list(peers):
            try:
                await asyncio.wait_for(peer.close(), 10)
            except Exception:
                pass
        peers.clear()

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()

        def signalling() -> None:
            # Its own thread: aiortc's encoders fill the loop's default executor under load,
            # and an offer must not wait behind them.
            while True:
                connection = listener.accept()
                message = connection.recv()
                if message == "stop":
                    loop.call_soon_threadsafe(stopped.set)
                    connection.close()
                    return
                work = close_all() if message == "close" else answer(message)
                reply = asyncio.run_coroutine_threadsafe(work, loop).result(120)
                connection.send("closed" if message == "close" else reply)
                connection.close()

        threading.Thread(target=signalling, daemon=True).start()
        await stopped.wait()
        await close_all()

    asyncio.run(serve())


# ----------------------------------------------------------------------------- the clients


def client_main(address, authkey: bytes, streams: int, fps: int, seconds: float, out) -> None:
    """``streams`` peers in one process, each sending the face video at ``fps`` and reading
    the numbers of the frames that come back; puts one report per stream into ``out``."""
    from multiprocessing.connection import Client

    import av
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    packets = encoded_loop(fps)

    class PreEncoded(MediaStreamTrack):
        kind = "video"

        def __init__(self):
            super().__init__()
            self.count = 0
            self.started: float | None = None
            self.sent: dict[int, float] = {}

        async def recv(self):
            if self.started is None:
                self.started = time.monotonic()
            due = self.started + self.count / fps
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            index = self.count % LOOP_FRAMES
            packet = av.Packet(packets[index])
            packet.pts = self.count * (90000 // fps)
            packet.time_base = Fraction(1, 90000)
            self.sent[index] = time.monotonic()
            self.count += 1
            return packet

    async def one_stream(number: int) -> dict:
        await asyncio.sleep(0.7 * number)  # one set-up at a time, as visitors arrive
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        sender = PreEncoded()
        transceiver = peer.addTransceiver(sender, direction="sendrecv")
        from aiortc.rtcrtpsender import RTCRtpSender

        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/VP8"]
        )
        seen: list[tuple[float, int]] = []  # (arrival, frame number), first sight of each
        last = [None]
        counts = {"received": 0, "unreadable": 0, "first_at": None}
        done = asyncio.Event()

        @peer.on("track")
        def on_track(track):
            async def consume():
                while not done.is_set():
                    try:
                        frame = await track.recv()
                    except Exception:
                        return
                    now = time.monotonic()
                    counts["received"] += 1
                    if counts["first_at"] is None:
                        counts["first_at"] = now
                    index = read_number(frame.to_ndarray(format="rgb24"))
                    if index is None:
                        counts["unreadable"] += 1
                    if index is not None and index != last[0]:
                        last[0] = index
                        sent = sender.sent.get(index)
                        if sent is not None and now >= sent:
                            seen.append((now, now - sent))

            asyncio.ensure_future(consume())

        await peer.setLocalDescription(await peer.createOffer())
        loop = asyncio.get_running_loop()

        def signal():
            connection = Client(address, authkey=authkey)
            connection.send({"sdp": peer.localDescription.sdp, "type": peer.localDescription.type})
            reply = connection.recv()
            connection.close()
            return reply

        reply = await loop.run_in_executor(None, signal)
        await peer.setRemoteDescription(RTCSessionDescription(**reply))
        started = time.monotonic()
        await asyncio.sleep(seconds)
        done.set()
        report = {
            "stream": number,
            "started": started,
            "seen": seen,
            "sent_frames": sender.count,
            **counts,
        }
        out.put(report)  # before closing: a close that hangs loses nothing
        try:
            await asyncio.wait_for(peer.close(), 10)
        except Exception:
            pass
        return report

    async def guarded(number: int) -> None:
        try:
            await asyncio.wait_for(one_stream(number), seconds + 60)
        except Exception as exc:  # reported: the step counts the stream as not held
            out.put({"stream": number, "error": f"{type(exc).__name__}: {exc}"[:300], "seen": []})

    async def run_all() -> None:
        await asyncio.wait_for(asyncio.gather(*(guarded(n) for n in range(streams))), seconds + 90)

    try:
        asyncio.run(run_all())
    finally:
        # Every report is in the queue; aiortc's teardown may still wait on its threads, which
        # nothing here needs: flush the queue and leave.
        out.close()
        out.join_thread()
        os._exit(0)


# ----------------------------------------------------------------------------- one step


def _server_usage(pid: int, seconds: float) -> dict:
    """The server's CPU (cores busy, over ``seconds``) and memory (peak and last RSS, MB)."""
    import psutil

    process = psutil.Process(pid)
    children = process.children(recursive=True)
    everyone = [process, *children]
    start_cpu = sum(sum(p.cpu_times()[:2]) for p in everyone)
    start = time.monotonic()
    peak = 0.0
    while time.monotonic() - start < seconds:
        peak = max(peak, sum(p.memory_info().rss for p in everyone) / 1e6)
        time.sleep(0.5)
    cpu = sum(sum(p.cpu_times()[:2]) for p in everyone) - start_cpu
    rss = sum(p.memory_info().rss for p in everyone) / 1e6
    return {
        "cores_busy": round(cpu / (time.monotonic() - start), 2),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(max(peak, rss), 1),
    }


def _close_streams(address, authkey: bytes) -> None:
    from multiprocessing.connection import Client

    connection = Client(address, authkey=authkey)
    connection.send("close")
    connection.recv()
    connection.close()


def measure_step(address, authkey, server_pid, streams: int, fps: int) -> dict:
    """``streams`` clients at once for WARMUP_S + MEASURE_S; the figures of the last
    MEASURE_S seconds."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    # At most 4 streams per client process, so one client process is never the bottleneck.
    shares = [min(4, streams - i) for i in range(0, streams, 4)]
    clients = [
        context.Process(
            target=client_main,
            args=(address, authkey, share, fps, WARMUP_S + MEASURE_S + 2, out),
            daemon=True,
        )
        for share in shares
    ]
    for client in clients:
        client.start()
    time.sleep(WARMUP_S + 2)  # the clients' set-up, then the warm-up
    window_start = time.monotonic()
    usage = _server_usage(server_pid, MEASURE_S)
    window_end = time.monotonic()
    reports = []
    deadline = time.monotonic() + 120
    while len(reports) < streams and time.monotonic() < deadline:
        try:
            reports.append(out.get(timeout=max(1.0, deadline - time.monotonic())))
        except queue.Empty:
            break
    for client in clients:
        client.join(timeout=30)
        if client.is_alive():
            client.terminate()
            print("  a client process hung: terminated", file=sys.stderr, flush=True)
        elif client.exitcode:
            print(f"  a client process exited with {client.exitcode}", file=sys.stderr, flush=True)
    errors = [r["error"] for r in reports if r.get("error")]
    for r in reports:
        if not r.get("error") and len(r["seen"]) < 10:
            print(
                f"  a stream saw little: received {r.get('received')}, unreadable "
                f"{r.get('unreadable')}, sent {r.get('sent_frames')}, first frame after "
                f"{(r['first_at'] - r['started']) if r.get('first_at') else None}",
                file=sys.stderr,
                flush=True,
            )
    missing = streams - len(reports)
    for error in errors:
        print(f"  a stream failed: {error}", file=sys.stderr, flush=True)
    reports += [{"seen": []}] * missing
    _close_streams(address, authkey)
    per_stream, latencies = [], []
    for report in reports:
        inside = [(t, lat) for t, lat in report["seen"] if window_start <= t <= window_end]
        if report["seen"] and not inside:
            print(
                f"  a stream's frames all fell outside the window: seen from "
                f"{report['seen'][0][0] - window_start:+.1f} s to "
                f"{report['seen'][-1][0] - window_start:+.1f} s, {len(report['seen'])} frames, "
                f"connected at {report.get('started', 0) - window_start:+.1f} s",
                file=sys.stderr,
                flush=True,
            )
        per_stream.append(len(inside) / (window_end - window_start))
        latencies.extend(lat for _, lat in inside)
    latencies_ms = np.asarray(latencies) * 1000
    return {
        "streams": streams,
        "failed_streams": len(errors) + missing,
        "fps_sent": fps,
        "fps_analysed_per_stream": {
            "mean": round(float(np.mean(per_stream)), 2),
            "min": round(float(np.min(per_stream)), 2),
        },
        "latency_ms": {
            "median": round(float(np.median(latencies_ms)), 1) if latencies else None,
            "p95": round(float(np.percentile(latencies_ms, 95)), 1) if latencies else None,
        },
        **usage,
    }


def kept_up(step: dict, fps: int) -> bool:
    """A step the server kept up with: every stream analysed at least 90% of its frames."""
    return step["fps_analysed_per_stream"]["min"] >= 0.9 * fps


# ----------------------------------------------------------------------------- the run


def run(detectors, frame_rates, steps, arenas: int = 2, relay: str = "newest") -> dict:
    context = multiprocessing.get_context("spawn")
    # The server starts with the allocator setting the app runs with (glibc reads it when a
    # process starts; 0: glibc's default of up to eight arenas per core).
    if arenas:
        os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    else:
        os.environ.pop("MALLOC_ARENA_MAX", None)
    results: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "in_namespace": bool(os.environ.get(NAMESPACE_ENV)),
        "warmup_s": WARMUP_S,
        "measure_s": MEASURE_S,
        "kept_up_rule": "every stream analysed at least 90% of the frames sent",
        "malloc_arena_max": arenas or "glibc default",
        "relay": relay,
        "runs": [],
    }
    for detector in detectors:
        authkey = os.urandom(16)
        address = ("127.0.0.1", _free_port())
        ready = context.Event()
        server = context.Process(
            target=server_main, args=(address, authkey, detector, ready, relay), daemon=True
        )
        server.start()
        if not ready.wait(180):
            raise RuntimeError("the bench server did not start")
        time.sleep(1.0)
        idle = _server_usage(server.pid, 3.0)
        for fps in frame_rates:
            entry = {"detector": detector, "fps": fps, "idle_rss_mb": idle["rss_mb"], "steps": []}
            for streams in steps:
                step = measure_step(address, authkey, server.pid, streams, fps)
                step["rss_per_stream_mb"] = round((step["rss_mb"] - idle["rss_mb"]) / streams, 1)
                step["kept_up"] = kept_up(step, fps)
                entry["steps"].append(step)
                print(
                    f"{detector} {fps} fps, {streams} streams: "
                    f"{step['fps_analysed_per_stream']['mean']:.1f} analysed/s per stream "
                    f"(min {step['fps_analysed_per_stream']['min']:.1f}), latency median "
                    f"{step['latency_ms']['median']} ms p95 {step['latency_ms']['p95']} ms, "
                    f"{step['cores_busy']} cores, {step['rss_mb']:.0f} MB",
                    flush=True,
                )
                time.sleep(2.0)
            # What the server holds once every stream of the steps has ended.
            entry["rss_after_mb"] = _server_usage(server.pid, 3.0)["rss_mb"]
            held = [s["streams"] for s in entry["steps"] if s["kept_up"]]
            entry["capacity"] = max(held) if held else 0
            results["runs"].append(entry)
        from multiprocessing.connection import Client

        connection = Client(address, authkey=authkey)
        connection.send("stop")
        connection.close()
        server.join(timeout=30)
        if server.is_alive():
            server.terminate()
    return results


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_namespace(argv: list[str]) -> int | None:
    """As root, run this bench again inside a network namespace with only loopback (and
    127.0.0.2, which aioice offers as a candidate); None when that is not possible."""
    if os.environ.get(NAMESPACE_ENV) or os.name != "posix" or os.geteuid() != 0:
        return None
    if not shutil.which("ip"):
        return None
    namespace = f"fer-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        for command in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"],
        ):
            subprocess.run(["ip", "netns", "exec", namespace, *command], check=True)
        env = dict(os.environ, **{NAMESPACE_ENV: "1"})
        return subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "bench.live_capacity"] + argv,
            cwd=ROOT,
            env=env,
        ).returncode
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.live_capacity")
    parser.add_argument("--quick", action="store_true", help="1 and 2 streams, Haar, 15 fps")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON")
    parser.add_argument("--steps", type=int, nargs="+", help="stream counts (default: all)")
    parser.add_argument("--detector", choices=DETECTORS, nargs="+", help="default: both")
    parser.add_argument("--fps", type=int, nargs="+", help="default: 15 and 25")
    parser.add_argument(
        "--malloc-arena-max",
        type=int,
        default=2,
        help="MALLOC_ARENA_MAX for the server, as make run and the systemd unit set it "
        "(default 2; 0: glibc's default)",
    )
    parser.add_argument(
        "--relay",
        choices=("newest", "buffered"),
        default="newest",
        help="newest: the app's relay, a busy consumer skips to the newest frame (default); "
        "buffered: streamlit-webrtc's own, which queues every frame",
    )
    args = parser.parse_args(argv)
    rc = _in_namespace(argv)
    if rc is not None:
        return rc
    if args.quick:
        results = run((HAAR.name,), (15,), (1, 2), args.malloc_arena_max, args.relay)
    else:
        results = run(
            tuple(args.detector or DETECTORS),
            tuple(args.fps or FRAME_RATES),
            tuple(args.steps or STEPS),
            args.malloc_arena_max,
            args.relay,
        )
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
