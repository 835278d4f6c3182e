//! The requests Karpenter makes, as data (rules/requests.json): per request the IAM action,
//! the resource and condition keys AWS evaluates, the call that carries it, the settings under
//! which Karpenter makes it, the versions that make it and the source file it comes from.
//! Loading checks every placeholder and version, so a bad catalogue fails at start. Pure.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The shipped catalogue.
pub const SHIPPED: &str = include_str!("../../rules/requests.json");

/// A Karpenter version, `v1.15.0` or `1.15` (a missing part is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `v1.15.0`, `1.15`, `v1.0.8-rc.1` (the pre-release is ignored), an image tag
    /// `1.15.0@sha256:…` too.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+', '@']).next()?;
        let mut parts = core.split('.');
        let mut next = |required: bool| match parts.next() {
            Some(p) => p.parse::<u32>().ok(),
            None if !required => Some(0),
            None => None,
        };
        let v = Version(next(true)?, next(false)?, next(false)?);
        parts.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A setting that decides whether Karpenter makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum When {
    /// The EC2NodeClass names a role (`spec.role`): Karpenter manages its instance profile.
    NodeClassRole,
    /// The EC2NodeClass names an instance profile (`spec.instanceProfile`).
    NodeClassInstanceProfile,
    /// An interruption queue is configured.
    InterruptionQueue,
    /// No cluster endpoint is configured: Karpenter asks EKS for it.
    NoClusterEndpoint,
    /// Not an isolated VPC: Karpenter calls the pricing API.
    NotIsolatedVpc,
    /// Validation's dry runs are on (not `DISABLE_DRY_RUN`).
    DryRunValidation,
    /// The AMIs are chosen by alias (SSM parameters).
    AmiAlias,
    /// A NodePool of the class allows spot.
    Spot,
    /// A NodePool of the class allows on-demand.
    OnDemand,
    /// The `RebootForRepair` feature gate is on.
    RebootForRepair,
    /// The EC2NodeClass selects capacity reservations.
    CapacityReservations,
}

/// One request as the catalogue gives it (placeholders in braces).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    pub id: String,
    pub action: String,
    pub resource: String,
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
    pub call: String,
    #[serde(default)]
    pub when: Vec<When>,
    pub from: String,
    pub until: Option<String>,
    pub source: String,
    #[serde(default)]
    pub note: String,
    /// A condition outside `When` (a placement-group selector, an AMI family, a flag): the
    /// request is left out, and the report says so.
    #[serde(default)]
    pub unmodeled_condition: Option<String>,
}

impl Template {
    /// Whether version `v` makes this request.
    pub fn made_by(&self, v: Version) -> bool {
        let from = Version::parse(&self.from).unwrap_or(Version(0, 0, 0));
        let before_end = self
            .until
            .as_deref()
            .and_then(Version::parse)
            .is_none_or(|until| v < until);
        from <= v && before_end
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    placeholders: BTreeMap<String, String>,
    requests: Vec<Template>,
}

/// The loaded catalogue.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub requests: Vec<Template>,
}

/// The placeholders a template may use; `Values` fills each.
pub const PLACEHOLDERS: &[&str] = &[
    "partition",
    "region",
    "account",
    "clusterName",
    "nodeClass",
    "nodePool",
    "nodeRole",
    "instanceProfile",
    "ec2Principal",
    "queueName",
    "imageId",
    "launchTemplateId",
    "instanceId",
    "fleetId",
    "subnetId",
    "securityGroupId",
    "ssmParameter",
    "nodeClassUID",
    "nodeClaim",
    "nodeName",
    "legacyInstanceProfile",
    "pricingRegion",
    "snapshotId",
    "volumeId",
    "networkInterfaceId",
    "spotInstanceRequestId",
    "capacityReservationId",
    "placementGroupName",
];

impl Catalogue {
    /// Parses and checks a catalogue: unique ids, known placeholders, valid versions.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let file: File = serde_json::from_str(text).map_err(|e| format!("not valid: {e}"))?;
        let mut seen = std::collections::BTreeSet::new();
        for t in &file.requests {
            if !seen.insert(t.id.as_str()) {
                return Err(format!("{}: the id is used twice", t.id));
            }
            let texts = std::iter::once(&t.resource)
                .chain(t.context.keys())
                .chain(t.context.values().flatten());
            for text in texts {
                if let Some(name) = placeholders(text).find(|p| !PLACEHOLDERS.contains(p)) {
                    return Err(format!("{}: unknown placeholder {{{name}}}", t.id));
                }
            }
            for v in std::iter::once(&t.from).chain(&t.until) {
                if Version::parse(v).is_none() {
                    return Err(format!("{}: {v:?} is not a version", t.id));
                }
            }
            if !t.action.contains(':') || !t.call.contains(':') {
                return Err(format!("{}: action and call are service:Name", t.id));
            }
        }
        // Keys beginning with `_` are notes on how values combine, not placeholders.
        let mut described = file.placeholders.keys().filter(|p| !p.starts_with('_'));
        if let Some(name) = described.find(|p| !PLACEHOLDERS.contains(&p.as_str())) {
            return Err(format!("placeholders: {name} is not one the doctor fills"));
        }
        Ok(Catalogue {
            requests: file.requests,
        })
    }

    /// The shipped catalogue (its validity is tested).
    pub fn shipped() -> Catalogue {
        Catalogue::parse(SHIPPED).expect("rules/requests.json is checked by the tests")
    }

    /// The requests version `v` makes.
    pub fn of(&self, v: Version) -> impl Iterator<Item = &Template> {
        self.requests.iter().filter(move |t| t.made_by(v))
    }
}

/// The `{name}` placeholders of a text.
pub fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// Fills a text's placeholders; `None` when a value it needs is unknown.
pub fn fill(text: &str, values: &BTreeMap<&str, String>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let (name, after) = rest[open + 1..].split_once('}')?;
        out.push_str(values.get(name)?);
        rest = after;
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("v1.15.0"), Some(Version(1, 15, 0)));
        assert_eq!(Version::parse("1.8"), Some(Version(1, 8, 0)));
        assert_eq!(Version::parse("v1.0.8-rc.1"), Some(Version(1, 0, 8)));
        assert_eq!(Version::parse("1.6.3@sha256:abc"), Some(Version(1, 6, 3)));
        for bad in ["", "v", "latest", "1.x", "1.2.3.4", "v-1"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
        assert!(Version(0, 37, 7) < Version(1, 0, 0));
        assert!(Version(1, 9, 0) < Version(1, 10, 0));
    }

    #[test]
    fn ranges_include_from_and_exclude_until() {
        let t: Template = serde_json::from_value(serde_json::json!({"id": "x",
            "action": "ec2:A", "resource": "*", "call": "ec2:A", "from": "v1.3.0",
            "until": "v1.7.0", "source": "f.go"}))
        .unwrap();
        assert!(!t.made_by(Version(1, 2, 9)));
        assert!(t.made_by(Version(1, 3, 0)));
        assert!(t.made_by(Version(1, 6, 99)));
        assert!(!t.made_by(Version(1, 7, 0)));
    }

    #[test]
    fn bad_catalogues_are_refused_with_the_request_named() {
        let base = serde_json::json!({"id": "x", "action": "ec2:A", "resource": "*",
            "call": "ec2:A", "from": "v1.0.0", "until": null, "source": "f.go"});
        let with = |field: &str, value: serde_json::Value| {
            let mut t = base.clone();
            t[field] = value;
            serde_json::json!({"requests": [t]}).to_string()
        };
        for (text, says) in [
            (
                with("resource", "arn:{nope}".into()),
                "unknown placeholder {nope}",
            ),
            (with("from", "one".into()), "is not a version"),
            (with("action", "A".into()), "service:Name"),
            (
                serde_json::json!({"requests": [base, base]}).to_string(),
                "used twice",
            ),
            (with("extra", 1.into()), "unknown field"),
            ("{\"requests\": [".to_string(), "not valid"),
        ] {
            let e = Catalogue::parse(&text).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn the_shipped_catalogue_loads_and_every_version_makes_the_launch() {
        let c = Catalogue::parse(SHIPPED).unwrap();
        for v in [Version(0, 32, 0), Version(1, 0, 8), Version(1, 15, 0)] {
            let ids: Vec<&str> = c.of(v).map(|t| t.action.as_str()).collect();
            for needed in ["ec2:CreateFleet", "iam:PassRole", "ec2:RunInstances"] {
                assert!(ids.contains(&needed), "{v} lacks {needed}");
            }
        }
    }

    #[test]
    fn fill_replaces_every_placeholder_or_says_none() {
        let values = BTreeMap::from([("partition", "aws-cn".to_string()), ("account", "1".into())]);
        assert_eq!(
            fill("arn:{partition}:iam::{account}:role/x", &values).as_deref(),
            Some("arn:aws-cn:iam::1:role/x")
        );
        assert_eq!(fill("arn:{partition}:{region}", &values), None);
        assert_eq!(fill("no braces", &values).as_deref(), Some("no braces"));
        assert_eq!(fill("{partition", &values), None);
    }
}
