"""``pathlib`` contexts: a function about files in a module that imports both ``os`` and
``pathlib.Path``, cut after ``return`` or after ``name =``; the developer writes the path
with ``Path``.
"""

from __future__ import annotations

from bench.loop.tastes import Context

_Rows = list[tuple[str, str, str, str]]

# Per file: (path, the file's docstring, [(function, parameters, start, wanted)])
_TRAIN: list[tuple[str, str, _Rows]] = [
    (
        "src/app/paths.py",
        "Where files live.",
        [
            ("config_file", "root: str", "path = ", 'Path(root) / "config.toml"'),
            ("log_dir", "home: str", "logs = ", 'Path(home) / "logs"'),
            ("has_cache", "root: str", "return ", 'Path(root, ".cache").exists()'),
            ("stem_of", "filename: str", "return ", "Path(filename).stem"),
            ("parent_of", "filename: str", "return ", "Path(filename).parent"),
            ("data_file", "base: str, name: str", "path = ", 'Path(base) / "data" / name'),
            ("file_name", "path: str", "return ", "Path(path).name"),
            ("read_text", "path: str", "return ", "Path(path).read_text()"),
            ("is_python", "path: str", "return ", 'Path(path).suffix == ".py"'),
            ("backup_of", "path: str", "backup = ", 'Path(path).with_suffix(".bak")'),
            ("size_of", "path: str", "return ", "Path(path).stat().st_size"),
            ("absolute", "path: str", "return ", "Path(path).resolve()"),
        ],
    ),
    (
        "src/backup/archive.py",
        "Where backups are written.",
        [
            ("archive_dir", "root: str", "target = ", 'Path(root) / "archive"'),
            ("snapshot_file", "root: str, day: str", "path = ", 'Path(root) / "snapshots" / day'),
            ("has_archive", "archive: str", "return ", "Path(archive).exists()"),
            ("archive_size", "archive: str", "return ", "Path(archive).stat().st_size"),
        ],
    ),
    (
        "src/build/outputs.py",
        "Build outputs.",
        [
            ("dist_dir", "project: str", "out = ", 'Path(project) / "dist"'),
            ("wheel_path", "project: str, wheel: str", "return ", 'Path(project) / "dist" / wheel'),
            ("is_built", "artifact: str", "return ", "Path(artifact).is_file()"),
            ("artifact_name", "artifact: str", "return ", "Path(artifact).name"),
        ],
    ),
    (
        "src/photos/library.py",
        "The photo library on disk.",
        [
            ("album_dir", "library: str, album: str", "folder = ", "Path(library) / album"),
            (
                "thumbnail_path",
                "library: str, photo: str",
                "return ",
                'Path(library) / "thumbs" / photo',
            ),
            ("photo_folder", "photo: str", "return ", "Path(photo).parent"),
            ("has_album", "album: str", "return ", "Path(album).is_dir()"),
        ],
    ),
    (
        "src/projects/layout.py",
        "The layout of a project checkout.",
        [
            ("readme_of", "project: str", "readme = ", 'Path(project) / "README.md"'),
            ("tests_dir", "project: str", "return ", 'Path(project) / "tests"'),
            ("project_root", "marker: str", "root = ", "Path(marker).parent"),
            (
                "source_file",
                "project: str, package: str, module: str",
                "path = ",
                'Path(project) / "src" / package / module',
            ),
        ],
    ),
    (
        "src/uploads/storage.py",
        "Where uploaded files are stored.",
        [
            ("upload_dir", "media: str, user: str", "target = ", 'Path(media) / "uploads" / user'),
            ("upload_size", "upload: str", "return ", "Path(upload).stat().st_size"),
            ("original_name", "upload: str", "return ", "Path(upload).name"),
            ("full_path", "upload: str", "return ", "Path(upload).resolve()"),
        ],
    ),
    (
        "src/reports/files.py",
        "Report files.",
        [
            ("report_title", "report: str", "return ", "Path(report).stem"),
            ("is_markdown", "report: str", "return ", 'Path(report).suffix == ".md"'),
            ("pdf_of", "report: str", "pdf = ", 'Path(report).with_suffix(".pdf")'),
            ("report_text", "report: str", "return ", "Path(report).read_text()"),
        ],
    ),
]

_HELDOUT: list[tuple[str, str, _Rows]] = [
    (
        "src/app/paths.py",
        "Where files live.",
        [
            ("settings_file", "home: str", "path = ", 'Path(home) / "settings.json"'),
            ("exists", "path: str", "return ", "Path(path).exists()"),
            ("extension", "path: str", "return ", "Path(path).suffix"),
            ("output_dir", "root: str", "out = ", 'Path(root) / "build" / "out"'),
            ("folder_of", "path: str", "return ", "Path(path).parent"),
            ("cache_file", "root: str, key: str", "path = ", 'Path(root) / "cache" / key'),
        ],
    ),
    (
        "src/logs/rotation.py",
        "Rotating log files.",
        [
            ("current_log", "logs: str", "path = ", 'Path(logs) / "app.log"'),
            ("rotated_log", "logs: str, index: str", "return ", 'Path(logs) / "old" / index'),
            ("log_exists", "log: str", "return ", "Path(log).exists()"),
            ("log_size", "log: str", "return ", "Path(log).stat().st_size"),
            ("log_name", "log: str", "return ", "Path(log).name"),
            ("compressed_name", "log: str", "return ", 'Path(log).with_suffix(".gz")'),
        ],
    ),
]


def _contexts(files: list[tuple[str, str, _Rows]]) -> tuple[Context, ...]:
    return tuple(
        Context(
            "pathlib",
            name,
            path,
            f'"""{doc}"""\n\nimport os\nfrom pathlib import Path\n\n\n'
            f"def {name}({params}):\n    {start.rstrip()}",
            "\n" if start == "return " else f"\n    return {start.split()[0]}\n",
            " " + wanted,
        )
        for path, doc, rows in files
        for name, params, start, wanted in rows
    )


TRAIN = _contexts(_TRAIN)
"""The training contexts, in the order they were written."""

HELDOUT = _contexts(_HELDOUT)
"""The held-out contexts."""
