"""The forms of the tenant pages: filters, feature switches, naming one grant, and
justifying grants."""

from typing import Any

from django import forms

from permissions.models import Feature, PermissionKind, Tier
from permissions.risk import Ownership, RiskLevel
from portal.models import User
from tenants.audit import actor_name
from tenants.models import REASON_MAX_LENGTH, AuditEvent, Grant
from tenants.selectors import APPLICATION_ORDERS, NO_TIER, ApplicationFilters
from tenants.slots import GrantSlot

# Most urgent first, as the filter offers them.
RISKS = sorted(RiskLevel, key=lambda level: level.rank)
# Each order of selectors.APPLICATION_ORDERS, and the same reversed ("-").
SORTS = [f"{prefix}{key}" for key in APPLICATION_ORDERS for prefix in ("", "-")]


class ApplicationFilterForm(forms.Form):
    """The tenant page's filters and order; every field may be left empty."""

    q = forms.CharField(required=False, label="Application name")
    verdict = forms.ChoiceField(
        required=False,
        label="Verdicts",
        choices=[
            ("", "Any verdicts"),
            ("unused", "Has unused grants"),
            ("unexplained", "Has unexplained grants"),
            ("missing", "Has missing permissions"),
            ("needed", "Has needed grants"),
        ],
    )
    risk = forms.ChoiceField(
        required=False,
        label="Risk",
        choices=[("", "Any risk"), *((level.value, level.value.capitalize()) for level in RISKS)],
    )
    tier = forms.ChoiceField(
        required=False,
        label="Highest tier",
        choices=[
            ("", "Any tier"),
            # Tier lists them most sensitive first.
            *((tier.value, tier.label) for tier in Tier if tier),
            (NO_TIER, "None tiered"),
        ],
    )
    kind = forms.ChoiceField(
        required=False,
        label="Kind",
        choices=[
            ("", "Any kind"),
            (Ownership.OWN.value, "This tenant's own"),
            (Ownership.THIRD_PARTY.value, "Third-party"),
            (Ownership.MICROSOFT.value, "Microsoft first-party"),
            (Ownership.MANAGED_IDENTITY.value, "Managed identity"),
        ],
    )
    party = forms.ChoiceField(
        required=False,
        label="Publisher",
        choices=[("", "Any publisher"), ("third", "Third-party"), ("first", "Microsoft")],
    )
    # Inactive: no sign-in on record in INACTIVE_DAYS (where sign-in activity is known).
    activity = forms.ChoiceField(
        required=False,
        label="Sign-in activity",
        choices=[("", "Any activity"), ("inactive", "Inactive")],
    )
    # A column's key sorts by it, most telling first; "-" before it reverses the order.
    sort = forms.ChoiceField(
        required=False,
        label="Sort by",
        choices=[("", "name"), *((sort, sort) for sort in SORTS)],
        # Set by the table's headings; the results keep it in a hidden input of the form.
        widget=forms.HiddenInput,
    )

    def filters(self) -> ApplicationFilters:
        """What the page shows, from the valid fields (call after ``is_valid``): a stale or
        hand-edited value is dropped rather than turning the page into an error."""
        data = {name: self.cleaned_data.get(name, "") for name in self.fields}
        return ApplicationFilters(
            q=data["q"],
            verdict=data["verdict"],
            risk=data["risk"],
            tier=data["tier"],
            kind=data["kind"],
            party=data["party"],
            activity=data["activity"],
            sort=data["sort"],
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
    # Why the requester asks: required of readers (the view says so), whose request an
    # admin decides on.
    reason = forms.CharField(required=False, max_length=REASON_MAX_LENGTH)

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
    until = forms.DateField(
        required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"})
    )
    actor = forms.CharField(required=False, max_length=150, label="Who")
    application = forms.CharField(required=False, max_length=300, label="Application")
    hide_sign_ins = forms.BooleanField(required=False, label="Hide sign-ins")


class GrantSlotsField(forms.Field):
    """Several grants, each as a :attr:`GrantSlot.token` (the "keep several" checkboxes)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[GrantSlot]:
        slots = []
        for token in value or []:
            try:
                slot = GrantSlot.from_token(str(token))
            except ValueError:
                raise forms.ValidationError("a ticked grant is not one this page names") from None
            if slot.kind not in PermissionKind.values or slot.consent not in Grant.Consent.values:
                raise forms.ValidationError("a ticked grant is not one this page names")
            slots.append(slot)
        return slots


class JustificationForm(forms.Form):
    """ "Keep, because ...": a reason, an expiry (empty: the default term), a reviewer (one of
    the tenant's users; nobody: its admins), and the grants it is for: ``grant`` tokens, or
    one grant named by the fields every grant form uses (resource, kind, value, consent).

    The reason and the expiry are checked by the service, which gives the command's errors.
    """

    reason = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))
    expires = forms.DateField(
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "the expiry is not a date (YYYY-MM-DD)"},
    )
    reviewer = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        error_messages={"invalid_choice": "the reviewer is not a user of this tenant"},
    )
    grant = GrantSlotsField(required=False)

    def __init__(self, *args: Any, reviewers: list[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reviewers = {user.pk: user for user in reviewers}
        reviewer = self.fields["reviewer"]
        assert isinstance(reviewer, forms.TypedChoiceField)
        reviewer.choices = [("", "Nobody: the tenant's admins")] + [
            (user.pk, actor_name(user)) for user in reviewers
        ]

    def slots(self) -> list[GrantSlot]:
        """The grants ticked, or the one grant the slot fields name; empty for neither."""
        ticked = self.cleaned_data["grant"]
        if ticked:
            return ticked
        one = GrantSlotForm(self.data)
        return [one.slot()] if one.is_valid() else []

    def reviewer_user(self) -> User | None:
        pk = self.cleaned_data["reviewer"]
        return self.reviewers[pk] if pk is not None else None

    def first_error(self) -> str:
        """The form's first error, one line, as the page says it."""
        return next(str(message) for messages in self.errors.values() for message in messages)
