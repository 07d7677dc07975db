"""The seed vendors' cases, on the manifests the portal ships (not hand-made needs)."""

from permissions.manifests import BUNDLED_MANIFESTS_DIR, ManifestSpec, manifest_read
from permissions.models import MICROSOFT_GRAPH_APP_ID as GRAPH
from permissions.models import MICROSOFT_INTUNE_APP_ID as INTUNE
from permissions.verdicts import Need, PermissionKey, Verdict, evaluate


def bundled(name: str) -> ManifestSpec:
    return manifest_read(path=BUNDLED_MANIFESTS_DIR / name)


def needs_of(spec: ManifestSpec) -> list[Need]:
    return [
        Need(
            feature.key,
            PermissionKey(str(req.resource_app_id), req.kind, req.permission),
            req.api_calls,
        )
        for feature in spec.features
        for req in feature.requirements
    ]


def all_features_but(spec: ManifestSpec, *off: str) -> set[str]:
    return {feature.key for feature in spec.features} - set(off)


def granted_all(spec: ManifestSpec) -> list[PermissionKey]:
    return list(dict.fromkeys(need.permission for need in needs_of(spec)))


def verdict_of(spec: ManifestSpec, enabled: set[str]) -> dict[str, Verdict]:
    evaluation = evaluate(needs=needs_of(spec), enabled_features=enabled, granted=granted_all(spec))
    return {f"{f.permission.value} ({f.permission.kind})": f.verdict for f in evaluation.grants}


def test_247connect_with_only_organisation_details_leaves_device_and_group_read_unused():
    spec = bundled("247connect.yaml")
    verdicts = verdict_of(spec, {"organisation-details"})
    assert verdicts == {
        "Device.Read.All (application)": Verdict.UNUSED,
        "Group.Read.All (application)": Verdict.UNUSED,
        "Organization.Read.All (application)": Verdict.NEEDED,
    }


def test_the_monitoring_platform_without_smart_buildings_leaves_places_and_calendars_unused():
    spec = bundled("teams-rooms-monitoring.yaml")
    verdicts = verdict_of(spec, all_features_but(spec, "smart-buildings"))
    assert verdicts["Place.Read.All (application)"] == Verdict.UNUSED
    assert verdicts["Calendars.ReadBasic.All (application)"] == Verdict.UNUSED
    assert {v for k, v in verdicts.items() if "Place" not in k and "Calendars" not in k} == {
        Verdict.NEEDED
    }


def test_askcody_lists_application_and_delegated_user_read_all_as_two_permissions():
    keys = granted_all(bundled("askcody.yaml"))
    assert PermissionKey(GRAPH, "application", "User.Read.All") in keys
    assert PermissionKey(GRAPH, "delegated", "User.Read.All") in keys


def test_lookouts_update_device_health_is_an_intune_api_permission():
    keys = granted_all(bundled("lookout-mes-console.yaml"))
    assert PermissionKey(INTUNE, "application", "update_device_health") in keys
    assert PermissionKey(GRAPH, "application", "update_device_health") not in keys
