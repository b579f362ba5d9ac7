from django import forms

from areas.models import Area


class AddAreaForm(forms.Form):
    name = forms.CharField(
        max_length=64, help_text="The same name on every peer that shares this area."
    )
    path = forms.CharField(
        label="Directory",
        max_length=4096,
        help_text="An existing directory on this machine, not inside another area.",
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
