"""Model encryption throughput: our streaming AES-256-CBC against ``openssl enc``, and our memory.

On the same seeded file (200 MB by default), in the same run:

- ``ours``: `azaion_training.store.security.encrypt_stream` / `decrypt_stream` between plain files
  (the ``IV ‖ ciphertext`` format), and the atomic, fsynced `encrypt_file` / `decrypt_file`;
- ``openssl``: ``openssl enc -aes-256-cbc [-d] -K .. -iv ..`` on the same file, same key
  (a subprocess reading and writing files; no fsync, no IV prefix);

Each is run ``--repeat`` times and the best time is kept. The output files are cross-checked
(openssl decrypts ours, we decrypt openssl's). Peak memory of ours is measured in a separate pass
with `tracemalloc` (Python allocations: the buffers the streaming loop holds), and the process's
peak RSS is printed too (interpreter and libraries included).

Run: ``python benchmarks/bench_crypto.py`` (``--help`` for options; ``--json PATH`` writes the
MB/s figures for ``run_all.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from azaion_training.store import security

KEY = "benchmark key"
CHUNK = 1 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=200, help="file size in MB (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best kept)")
    parser.add_argument("--dir", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the MB/s figures here")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-crypto-", dir=args.dir))
    try:
        rates = run(scratch, size=args.size_mb * 1_000_000, repeat=args.repeat)
        if args.json:
            args.json.write_text(json.dumps(rates))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(scratch: Path, *, size: int, repeat: int) -> dict[str, float]:
    """Runs every timing and check, prints them; returns MB/s per name."""
    plain = scratch / "model.bin"
    write_seeded(plain, size)
    ours_enc, ours_dec = scratch / "ours.enc", scratch / "ours.dec"
    ossl_enc, ossl_dec = scratch / "openssl.enc", scratch / "openssl.dec"
    key_hex = hashlib.sha256(KEY.encode()).hexdigest()
    iv_hex = bytes(range(16)).hex()

    def openssl(*extra: str, source: Path, target: Path) -> None:
        subprocess.run(
            [
                "openssl",
                "enc",
                "-aes-256-cbc",
                *extra,
                "-K",
                key_hex,
                "-iv",
                iv_hex,
                "-in",
                str(source),
                "-out",
                str(target),
            ],
            check=True,
        )

    results = {
        "encrypt ours": best(repeat, lambda: streamed(security.encrypt_stream, plain, ours_enc)),
        "encrypt openssl": best(repeat, lambda: openssl(source=plain, target=ossl_enc)),
        "decrypt ours": best(repeat, lambda: streamed(security.decrypt_stream, ours_enc, ours_dec)),
        "decrypt openssl": best(repeat, lambda: openssl("-d", source=ossl_enc, target=ossl_dec)),
    }
    durable = {
        "encrypt_file": best(repeat, lambda: security.encrypt_file(plain, ours_enc, KEY)),
        "decrypt_file": best(repeat, lambda: security.decrypt_file(ours_enc, ours_dec, KEY)),
    }
    check_outputs(plain, ours_enc, ours_dec, ossl_enc, ossl_dec, key_hex, scratch)

    tracemalloc.start()
    security.encrypt_file(plain, ours_enc, KEY)
    _, peak_encrypt = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    security.decrypt_file(ours_enc, ours_dec, KEY)
    _, peak_decrypt = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    mb = size / 1_000_000
    print(f"file: {mb:.0f} MB, best of {repeat}, {security.CHUNK_SIZE // 1024} KiB chunks")
    print(f"{'':18}{'seconds':>9}{'MB/s':>9}")
    for name, seconds in results.items():
        print(f"{name:18}{seconds:9.3f}{mb / seconds:9.0f}")
    for name, seconds in durable.items():
        print(f"{name:18}{seconds:9.3f}{mb / seconds:9.0f}   (ours, atomic write + fsync)")
    for step in ("encrypt", "decrypt"):
        ratio = results[f"{step} openssl"] / results[f"{step} ours"]
        print(f"{step}: ours runs at {ratio:.2f}x the speed of openssl enc")
    print(
        f"peak Python memory of ours: encrypt {peak_encrypt / 1e6:.1f} MB, decrypt "
        f"{peak_decrypt / 1e6:.1f} MB ({max(peak_encrypt, peak_decrypt) / size:.2%} of the file)"
    )
    print(f"peak RSS of this process (interpreter, libraries, all of the above): {rss_mb:.0f} MB")
    return {name: mb / seconds for name, seconds in {**results, **durable}.items()}


def streamed(function: Callable[..., int], source: Path, target: Path) -> None:
    """Ours on plain files, like openssl: no temporary name, no fsync."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        function(reader, writer, KEY)


def best(repeat: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def write_seeded(path: Path, size: int) -> None:
    """Pseudo-random bytes from SHAKE-256 (seeded, incompressible), written in chunks."""
    with open(path, "wb") as handle:
        for index in range(0, size, CHUNK):
            block = hashlib.shake_256(index.to_bytes(8, "little")).digest(min(CHUNK, size - index))
            handle.write(block)


def check_outputs(
    plain: Path,
    ours_enc: Path,
    ours_dec: Path,
    ossl_enc: Path,
    ossl_dec: Path,
    key_hex: str,
    scratch: Path,
) -> None:
    digest = file_sha256(plain)
    assert file_sha256(ours_dec) == digest, "ours did not round-trip"
    assert file_sha256(ossl_dec) == digest, "openssl did not round-trip"
    # openssl decrypts ours: strip our IV prefix and pass it as -iv.
    with open(ours_enc, "rb") as handle:
        iv = handle.read(16)
        body = scratch / "ours.body"
        with open(body, "wb") as out:
            shutil.copyfileobj(handle, out, CHUNK)
    cross = scratch / "cross.dec"
    subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            key_hex,
            "-iv",
            iv.hex(),
            "-in",
            str(body),
            "-out",
            str(cross),
        ],
        check=True,
    )
    assert file_sha256(cross) == digest, "openssl could not decrypt ours"
    # we decrypt openssl's: prefix its IV.
    prefixed = scratch / "openssl.prefixed"
    with open(prefixed, "wb") as out, open(ossl_enc, "rb") as handle:
        out.write(bytes(range(16)))
        shutil.copyfileobj(handle, out, CHUNK)
    security.decrypt_file(prefixed, cross, KEY)
    assert file_sha256(cross) == digest, "we could not decrypt openssl's"
    for path in (body, cross, prefixed):
        path.unlink()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


if __name__ == "__main__":
    main()
