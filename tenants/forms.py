"""The forms of the tenant pages: filters, feature switches, and naming one grant."""

from typing import Any

from django import forms

from permissions.models import Feature, PermissionKind
from tenants.models import AuditEvent, Grant
from tenants.slots import GrantSlot


class ApplicationFilterForm(forms.Form):
    """The tenant page's filters; every field may be left empty."""

    q = forms.CharField(required=False, label="Application name")
    verdict = forms.ChoiceField(
        required=False,
        label="Verdicts",
        choices=[
            ("", "Any verdicts"),
            ("unused", "Has unused grants"),
            ("unexplained", "Has unexplained grants"),
            ("missing", "Has missing permissions"),
        ],
    )
    party = forms.ChoiceField(
        required=False,
        label="Publisher",
        choices=[("", "Any publisher"), ("third", "Third-party"), ("first", "Microsoft")],
    )


class FeatureSwitchForm(forms.Form):
    """The features to have on; every other feature of the application is switched off."""

    def __init__(self, *args: Any, features: list[Feature], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["enabled"] = forms.MultipleChoiceField(
            required=False, choices=[(feature.key, feature.name) for feature in features]
        )


class GrantSlotForm(forms.Form):
    """Names one grant of an application: the permission and the consent type."""

    resource_app_id = forms.UUIDField()
    kind = forms.ChoiceField(choices=PermissionKind.choices)
    value = forms.CharField(max_length=200)
    consent = forms.ChoiceField(choices=Grant.Consent.choices)
    # A needed grant goes only once someone has seen which features it breaks.
    confirm = forms.BooleanField(required=False)
    # The portal's own write permission goes only once an admin typed its name here.
    acknowledge = forms.CharField(required=False, max_length=200)

    def slot(self) -> GrantSlot:
        data = self.cleaned_data
        return GrantSlot(str(data["resource_app_id"]), data["kind"], data["value"], data["consent"])


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(
        required=False, label="Action", choices=[("", "Any action"), *AuditEvent.Action.choices]
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
