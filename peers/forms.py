from django import forms

from peers import household


class AddPeerForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="How this household calls the peer.")
    peer_id = forms.CharField(
        label="Peer id",
        max_length=100,
        help_text="Shown by 'realize id' or on that peer's dashboard.",
        widget=forms.TextInput(attrs={"size": 64, "spellcheck": "false", "autocomplete": "off"}),
    )
    address = forms.CharField(
        label="Address",
        max_length=300,
        required=False,
        help_text="HOST:PORT where it listens. Leave empty for a deaf peer.",
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["name"], data["key"], data["address"] = household.check_new_peer(
                data["name"], data["peer_id"], data.get("address")
            )
        except household.HouseholdError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


class EditPeerForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="How this household calls the peer.")
    address = forms.CharField(
        label="Address",
        max_length=300,
        required=False,
        help_text="HOST:PORT where it listens. Leave empty for a deaf peer.",
    )

    def clean_name(self):
        try:
            return household.check_name(self.cleaned_data["name"])
        except household.HouseholdError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_address(self):
        try:
            return household.check_address(self.cleaned_data.get("address"))
        except household.HouseholdError as exc:
            raise forms.ValidationError(str(exc)) from None
