#!/usr/bin/env python3
"""Zip each function that `sam build` produced and print its size.

    scripts/function-zips.py [.aws-sam/build]

Each .aws-sam/build/<Function>/bootstrap becomes .aws-sam/zips/<Function>.zip, deflated and
executable, as Lambda receives it (`sam deploy` zips the same way). Exits non-zero if a function
of the built template has no bootstrap.
"""
import pathlib
import sys
import zipfile


def main() -> int:
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    out = build.parent / "zips"
    out.mkdir(parents=True, exist_ok=True)
    template = build / "template.yaml"
    names = sorted(p.name for p in build.iterdir() if p.is_dir())
    if not names:
        print(f"no built functions under {build}", file=sys.stderr)
        return 1
    missing = 0
    print(f"{'function':<32} {'bootstrap':>12} {'zip':>12}")
    for name in names:
        bootstrap = build / name / "bootstrap"
        if not bootstrap.is_file():
            print(f"{name:<32} {'missing':>12}", file=sys.stderr)
            missing += 1
            continue
        target = out / f"{name}.zip"
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16  # regular file, rwxr-xr-x
        info.compress_type = zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(target, "w") as z:
            z.writestr(info, bootstrap.read_bytes(), compresslevel=9)
        print(f"{name:<32} {human(bootstrap.stat().st_size):>12} {human(target.stat().st_size):>12}")
    if template.exists():
        print(f"(built template: {template}; zips in {out})")
    return 1 if missing else 0


def human(n: int) -> str:
    return f"{n / 1024 / 1024:.2f} MiB"


if __name__ == "__main__":
    sys.exit(main())
