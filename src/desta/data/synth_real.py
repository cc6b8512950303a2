"""Real recordings that install from Debian, as ``desta data synth`` sources: LibriVox read speech and
spoken commands (pocketsphinx-testdata), IVR prompts by one US female voice (asterisk Allison), sound
effects and spoken channel names (sound-theme-freedesktop). Labels come from shipped transcriptions
and file names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

POCKETSPHINX_DIR = Path("/usr/share/pocketsphinx/test/data")
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
FREEDESKTOP_DIR = Path("/usr/share/sounds/freedesktop/stereo")

ALLISON_WORDS = {
    **{str(i): w for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())},
    **{str(10 * i): w for i, w in zip(range(3, 10), "thirty forty fifty sixty seventy eighty ninety".split())},
    "hundred": "hundred", "thousand": "thousand", "million": "million", "billion": "billion", "oh": "oh",
    "minus": "minus", "today": "today", "tomorrow": "tomorrow", "yesterday": "yesterday", "oclock": "o'clock",
}  # fmt: skip
NATO = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey x-ray yankee zulu".split()
ALLISON_PHRASES = {
    "hello-world": "Hello world.",
    "goodbye": "Goodbye.",
    "hello": "Hello.",
    "please-try-again": "Please try again.",
    "one-moment-please": "One moment please.",
}
FREEDESKTOP_CAPTIONS = {
    "alarm-clock-elapsed": "an alarm clock ringing", "audio-test-signal": "an audio test signal",
    "audio-volume-change": "a short volume-change blip", "bell": "a bell ring", "camera-shutter": "a camera shutter click",
    "complete": "a completion chime", "device-added": "a device-connected chime", "device-removed": "a device-removed chime",
    "dialog-information": "an information chime", "dialog-warning": "a warning sound", "message-new-instant": "an instant message alert",
    "message": "a message notification", "network-connectivity-established": "a network-connected chime",
    "network-connectivity-lost": "a network-lost sound", "phone-incoming-call": "a phone ringing for an incoming call",
    "phone-outgoing-busy": "a busy tone", "phone-outgoing-calling": "a ringback tone of an outgoing call",
    "power-plug": "a power-plug chime", "power-unplug": "a power-unplug chime", "screen-capture": "a screen-capture shutter sound",
    "service-login": "a login chime", "service-logout": "a logout chime", "suspend-error": "an error sound",
    "trash-empty": "crumpling paper of an emptied trash can", "window-attention": "an attention chime", "window-question": "a question chime",
}  # fmt: skip


def real_items(engine: str) -> list[dict[str, Any]]:
    """Every usable file of a real-recording source, as plan items (without split)."""
    items: list[dict[str, Any]] = []
    if engine == "pocketsphinx":
        for sub, trans in (("librivox", "librivox/transcription"), ("cards", "cards/cards.transcription")):
            for line in (POCKETSPHINX_DIR / trans).read_text().splitlines():
                if "(" not in line:
                    continue
                text, fid = line.rsplit("(", 1)
                text = text.replace("<s>", "").replace("</s>", "").strip()
                name = fid.strip(" )").split("/")[-1]
                path = POCKETSPHINX_DIR / sub / f"{name}.wav"
                if path.exists():
                    items.append(
                        {"path": str(path), "transcript": text.capitalize(), "name": f"{sub}-{name}"}
                    )
        for name, text in (
            ("goforward", "Go forward ten meters"),
            ("something", "Go somewhere and do something"),
        ):
            path = POCKETSPHINX_DIR / f"{name}.raw"
            if path.exists():
                items.append({"path": str(path), "transcript": text, "name": name, "raw": True})
    elif engine == "allison":
        for f in sorted((ALLISON_DIR / "digits").glob("*.wav")):
            if f.stem in ALLISON_WORDS:
                items.append(
                    {
                        "path": str(f),
                        "transcript": ALLISON_WORDS[f.stem].capitalize(),
                        "name": f"digits-{f.stem}",
                    }
                )
        for f in sorted((ALLISON_DIR / "letters").glob("?.wav")):
            items.append({"path": str(f), "transcript": f.stem.upper(), "name": f"letters-{f.stem}"})
        for f in sorted((ALLISON_DIR / "phonetic").glob("?_p.wav")):
            if f.stem[0].isalpha():
                items.append(
                    {
                        "path": str(f),
                        "transcript": NATO[ord(f.stem[0]) - ord("a")].capitalize(),
                        "name": f"phonetic-{f.stem}",
                    }
                )
        for stem, text in ALLISON_PHRASES.items():
            if (ALLISON_DIR / f"{stem}.wav").exists():
                items.append({"path": str(ALLISON_DIR / f"{stem}.wav"), "transcript": text, "name": stem})
    elif engine == "freedesktop":
        seen: set[str] = set()
        for f in sorted(FREEDESKTOP_DIR.glob("*.oga")):
            real = os.path.realpath(f)
            if real in seen or f.is_symlink():
                continue
            seen.add(real)
            if f.stem.startswith("audio-channel-"):
                words = f.stem.removeprefix("audio-channel-").replace("-", " ")
                items.append({"path": str(f), "transcript": words.capitalize(), "name": f.stem})
            else:
                items.append(
                    {
                        "path": str(f),
                        "caption": FREEDESKTOP_CAPTIONS.get(f.stem, f.stem.replace("-", " ")),
                        "name": f.stem,
                        "sound": True,
                    }
                )
    return items
