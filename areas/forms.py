import errno
import os
import zoneinfo

from django import forms

from areas.models import Area
from areas.windows import DAY_NAMES, EVERY, SPAN


def directory_problem(path: str) -> str | None:
    """Why `path` cannot be looked at as an area's directory (one line for a person), or None.

    The checks the system would otherwise make for us, badly: a relative path would be taken
    from the process's own directory, and a name too long raises instead of answering.
    add_area checks the rest (exists, is a directory, overlaps)."""
    path = os.path.expanduser(path.strip())
    if not path:
        return None  # add_area says a directory is needed
    if "\x00" in path:
        return "the path contains a NUL character"
    if not os.path.isabs(path):
        return f"the path must be absolute (start with /): {path}"
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # add_area says what is missing
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "the path or one of its names is too long"
        return f"cannot look at {path}: {exc.strerror or exc}"
    return None


class AddAreaForm(forms.Form):
    name = forms.CharField(
        max_length=64, help_text="The same name on every peer that shares this area."
    )
    path = forms.CharField(
        label="Directory",
        max_length=4096,
        help_text="An existing directory on this machine (a full path, from /), "
        "not inside another area.",
        widget=forms.TextInput(attrs={"size": 64, "spellcheck": "false", "autocomplete": "off"}),
    )
    mode = forms.ChoiceField(
        choices=[
            (Area.Mode.REAL, "Real: every file complete on this disk"),
            (Area.Mode.UNREAL, "Unreal: content fetched from peers when opened"),
        ],
        initial=Area.Mode.REAL,
        widget=forms.RadioSelect,
    )

    def clean_path(self) -> str:
        path = self.cleaned_data["path"]
        problem = directory_problem(path)
        if problem:
            raise forms.ValidationError(problem[:1].upper() + problem[1:] + ".")
        return path


class AreaSettingsForm(forms.Form):
    rest_seconds = forms.IntegerField(
        label="Rest period (seconds)",
        min_value=0,
        max_value=7 * 24 * 3600,
        help_text="Quiet after a file is created or edited here before consensus starts by "
        "itself. Deletes and renames start it at once.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class WindowForm(forms.Form):
    """A consensus window: a span of time on chosen days, or a run every few minutes."""

    kind = forms.ChoiceField(
        choices=[(SPAN, "From a time to a time"), (EVERY, "A run every so many minutes")],
        initial=SPAN,
        widget=forms.RadioSelect,
    )
    days = forms.ChoiceField(choices=list(DAY_NAMES.items()), initial="*")
    start = forms.TimeField(required=False, label="Opens at", widget=forms.TimeInput(
        attrs={"type": "time"}, format="%H:%M"))  # fmt: skip
    end = forms.TimeField(required=False, label="Closes at", help_text="Before the opening "
                          "time: the next day.", widget=forms.TimeInput(
                              attrs={"type": "time"}, format="%H:%M"))  # fmt: skip
    every_minutes = forms.IntegerField(
        required=False, min_value=5, max_value=7 * 24 * 60, label="Every (minutes)",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )  # fmt: skip
    time_zone = forms.ChoiceField(
        choices=[(z, z) for z in sorted(zoneinfo.available_timezones())], initial="UTC"
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == SPAN and (data.get("start") is None or data.get("end") is None):
            raise forms.ValidationError("Give the time the window opens and the time it closes.")
        if data.get("kind") == EVERY and data.get("every_minutes") is None:
            raise forms.ValidationError("Give how many minutes apart the runs are.")
        return data
