//! How the running Karpenter runs, from its Deployment's controller container: its version
//! (the image's tag) and the options that change the requests it makes, read as Karpenter
//! reads them (sigs.k8s.io/karpenter and karpenter-provider-aws `pkg/operator/options`): an
//! environment variable gives the default and a flag in the container's args wins; and the
//! `Settings` a preflight evaluates, from what was given, what runs and what the inputs say.
//! Pure.

use super::Settings;
use super::catalog::Version;
use crate::partition::Partition;
use crate::policy::arn::Arn;
use crate::signal::Observations;

/// The version evaluated when none is given and no running Karpenter names one.
pub const NEWEST: Version = Version(1, 15, 0);

/// What the user (flags) or the controller's own settings give; each wins over the cluster.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub version: Option<Version>,
    pub controller_role: Option<String>,
    pub region: Option<String>,
    pub partition: Option<&'static Partition>,
    pub cluster_name: Option<String>,
    pub node_role: Option<String>,
    pub interruption_queue: Option<String>,
    pub cluster_endpoint: bool,
    pub isolated_vpc: bool,
    pub disable_dry_run: bool,
    pub feature_gates: Vec<String>,
}

/// The settings a preflight evaluates: what is given wins over what runs (`running`, and the
/// region of the cluster's EKS endpoint), which wins over what the inputs say (`obs`: the
/// controller role of Karpenter's ServiceAccount or of its Pod Identity association, a cluster
/// name). An error names what is
/// missing.
pub fn settings(
    given: &Given,
    running: &Running,
    endpoint_region: Option<&str>,
    obs: &Observations,
) -> Result<Settings, String> {
    let controller_role = given
        .controller_role
        .clone()
        .or_else(|| crate::diagnose::controller_account(obs).map(|a| a.role.clone()))
        .or_else(|| {
            crate::diagnose::credentials::karpenter_association(obs).and_then(|a| a.role.clone())
        })
        .ok_or("the controller role is not known: give --controller-role ARN, Karpenter's ServiceAccount (annotated eks.amazonaws.com/role-arn) or its Pod Identity association")?;
    let region = given
        .region
        .clone()
        .or_else(|| running.region.clone())
        .or_else(|| endpoint_region.map(str::to_string))
        .ok_or("the region is not known: give --region")?;
    let partition = given.partition.unwrap_or_else(|| {
        Arn::parse(&controller_role)
            .and_then(|a| Partition::by_id(a.partition))
            .unwrap_or_else(|| Partition::of_region(&region))
    });
    Ok(Settings {
        version: version(given, running, obs).0,
        partition,
        region,
        cluster_name: given
            .cluster_name
            .clone()
            .or_else(|| running.cluster_name.clone())
            .or_else(|| obs.cluster_names.first().cloned()),
        controller_role,
        node_role: given.node_role.clone(),
        interruption_queue: given
            .interruption_queue
            .clone()
            .or_else(|| running.interruption_queue.clone()),
        cluster_endpoint: given.cluster_endpoint || running.cluster_endpoint.is_some(),
        isolated_vpc: given.isolated_vpc || running.isolated_vpc == Some(true),
        disable_dry_run: given.disable_dry_run || running.disable_dry_run == Some(true),
        feature_gates: running
            .feature_gates
            .iter()
            .chain(&given.feature_gates)
            .cloned()
            .collect(),
    })
}

/// Where the version a preflight evaluates comes from, in the order it is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionFrom {
    /// `--karpenter-version`.
    Given,
    /// The controller image's tag.
    ImageTag,
    /// The chart's labels on Karpenter's Deployment (an image named by digest alone).
    DeploymentLabel,
    /// The chart's labels on Karpenter's ServiceAccount.
    ServiceAccountLabel,
    /// Nothing names one: the newest in the catalogue.
    Newest,
}

impl std::fmt::Display for VersionFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VersionFrom::Given => "--karpenter-version",
            VersionFrom::ImageTag => "the image's tag",
            VersionFrom::DeploymentLabel => "the Deployment's label app.kubernetes.io/version",
            VersionFrom::ServiceAccountLabel => {
                "the ServiceAccount's label app.kubernetes.io/version"
            }
            VersionFrom::Newest => "nothing names a version; --karpenter-version",
        })
    }
}

/// The version a preflight evaluates, and where it comes from: what is given, else the
/// image's tag, else the labels Karpenter's chart sets on its Deployment and ServiceAccount
/// (an image named by its digest alone names no version), else the newest.
pub fn version(given: &Given, running: &Running, obs: &Observations) -> (Version, VersionFrom) {
    let labelled = || {
        crate::diagnose::controller_account(obs)
            .and_then(|a| a.chart_version.as_deref())
            .and_then(Version::parse)
    };
    given
        .version
        .map(|v| (v, VersionFrom::Given))
        .or(running.version.map(|v| (v, VersionFrom::ImageTag)))
        .or(running
            .chart_version
            .map(|v| (v, VersionFrom::DeploymentLabel)))
        .or_else(|| labelled().map(|v| (v, VersionFrom::ServiceAccountLabel)))
        .unwrap_or((NEWEST, VersionFrom::Newest))
}

/// The controller container as its Deployment declares it (only literal `env` values: a value
/// from a Secret or a ConfigMap is not known here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    pub image: String,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

/// What the container says; `None` where it says nothing (Karpenter's default then holds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Running {
    /// From the image's tag (`…/controller:1.15.2@sha256:…`); `None` for a digest alone.
    pub version: Option<Version>,
    /// From the chart's labels on the Deployment (`signal::kube::chart_version`), where it
    /// was read.
    pub chart_version: Option<Version>,
    pub region: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_endpoint: Option<String>,
    pub interruption_queue: Option<String>,
    pub isolated_vpc: Option<bool>,
    pub disable_dry_run: Option<bool>,
    /// `FEATURE_GATES` then `AWS_FEATURE_GATES`, one `Name=bool` per gate, the last word wins.
    pub feature_gates: Vec<String>,
}

/// Reads `container` as Karpenter reads its options.
pub fn read(container: &Container) -> Running {
    let option = |flag: &str, env: &str, boolean: bool| {
        flag_value(&container.args, flag, boolean).or_else(|| {
            container
                .env
                .iter()
                .rev()
                .find(|(name, _)| name == env)
                .map(|(_, value)| Some(value.clone()))
        })
    };
    let text = |flag: &str, env: &str| option(flag, env, false).flatten().filter(|v| !v.is_empty());
    let boolean = |flag: &str, env: &str| {
        option(flag, env, true).and_then(|v| match v {
            None => Some(true),
            Some(v) => parse_bool(&v),
        })
    };
    let mut gates: Vec<(String, String)> = Vec::new();
    for (flag, env) in [
        ("feature-gates", "FEATURE_GATES"),
        ("aws-feature-gates", "AWS_FEATURE_GATES"),
    ] {
        for gate in text(flag, env).iter().flat_map(|v| v.split(',')) {
            let (name, value) = gate.split_once('=').unwrap_or((gate, "true"));
            let Some(value) = parse_bool(value.trim()) else {
                continue;
            };
            gates.retain(|(n, _)| n != name.trim());
            gates.push((name.trim().to_string(), value.to_string()));
        }
    }
    let env = |name: &str| {
        container
            .env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    Running {
        version: image_version(&container.image),
        chart_version: None,
        region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
        cluster_name: text("cluster-name", "CLUSTER_NAME"),
        cluster_endpoint: text("cluster-endpoint", "CLUSTER_ENDPOINT"),
        interruption_queue: text("interruption-queue", "INTERRUPTION_QUEUE"),
        isolated_vpc: boolean("isolated-vpc", "ISOLATED_VPC"),
        disable_dry_run: boolean("disable-dry-run", "DISABLE_DRY_RUN"),
        feature_gates: gates.into_iter().map(|(n, v)| format!("{n}={v}")).collect(),
    }
}

/// The version an image's tag names: `public.ecr.aws/karpenter/controller:1.15.2@sha256:…`
/// is v1.15.2; a registry's port is not a tag.
pub fn image_version(image: &str) -> Option<Version> {
    let name = image.split('@').next()?;
    let last = name.rsplit('/').next()?;
    let (_, tag) = last.split_once(':')?;
    Version::parse(tag)
}

/// The value of `--flag`/`-flag` in `args` as Go's `flag` reads it: `--flag=v`; `--flag v` for
/// a value flag (whatever the next word is); `Some(None)` for a boolean flag given alone. The
/// last one wins.
fn flag_value(args: &[String], flag: &str, boolean: bool) -> Option<Option<String>> {
    let mut found = None;
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(rest) = word
            .strip_prefix("--")
            .or_else(|| word.strip_prefix('-'))
            .and_then(|n| n.strip_prefix(flag))
        else {
            continue;
        };
        if let Some(value) = rest.strip_prefix('=') {
            found = Some(Some(value.to_string()));
        } else if rest.is_empty() {
            found = Some(if boolean { None } else { words.next().cloned() });
        }
    }
    found
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, env: &[(&str, &str)], args: &[&str]) -> Container {
        Container {
            image: image.into(),
            env: env
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn what_is_given_wins_over_what_runs_which_wins_over_the_inputs() {
        let mut obs = Observations::default();
        obs.cluster_names.push("from-inputs".into());
        let running = read(&container(
            "k:1.0.8",
            &[
                ("CLUSTER_NAME", "from-karpenter"),
                ("INTERRUPTION_QUEUE", "q"),
                ("AWS_FEATURE_GATES", "RebootForRepair=true"),
            ],
            &["--isolated-vpc"],
        ));
        let role = "arn:aws-cn:iam::111122223333:role/K";
        let given = Given {
            controller_role: Some(role.into()),
            feature_gates: vec!["RebootForRepair=false".into()],
            ..Given::default()
        };
        let s = settings(&given, &running, Some("cn-north-1"), &obs).unwrap();
        assert_eq!(s.version, Version(1, 0, 8));
        assert_eq!(s.region, "cn-north-1");
        assert_eq!(s.partition.id, "aws-cn");
        assert_eq!(s.cluster_name.as_deref(), Some("from-karpenter"));
        assert_eq!(s.interruption_queue.as_deref(), Some("q"));
        assert!(s.isolated_vpc && !s.disable_dry_run && !s.cluster_endpoint);
        assert_eq!(
            s.feature_gates,
            ["RebootForRepair=true", "RebootForRepair=false"]
        );
        let given = Given {
            region: Some("eu-west-1".into()),
            cluster_name: Some("flag".into()),
            version: Some(Version(1, 15, 0)),
            ..given
        };
        let s = settings(&given, &running, Some("cn-north-1"), &obs).unwrap();
        assert_eq!(
            (s.region.as_str(), s.cluster_name.as_deref(), s.version),
            ("eu-west-1", Some("flag"), Version(1, 15, 0))
        );
        // Nothing runs: the inputs' cluster name, the newest version.
        let s = settings(&given, &Running::default(), None, &obs).unwrap();
        assert_eq!(s.version, Version(1, 15, 0));
        let bare = Given {
            controller_role: Some(role.into()),
            ..Given::default()
        };
        let s = settings(&bare, &Running::default(), Some("cn-north-1"), &obs).unwrap();
        assert_eq!(
            (s.version, s.cluster_name.as_deref()),
            (NEWEST, Some("from-inputs"))
        );
        let err = settings(&Given::default(), &running, Some("us-east-1"), &obs).unwrap_err();
        assert!(err.contains("--controller-role"), "{err}");
        let err = settings(&bare, &Running::default(), None, &obs).unwrap_err();
        assert!(err.contains("--region"), "{err}");
    }

    #[test]
    fn the_version_is_the_images_tag() {
        for (image, version) in [
            (
                "public.ecr.aws/karpenter/controller:1.15.2@sha256:0c1d",
                Some(Version(1, 15, 2)),
            ),
            (
                "public.ecr.aws/karpenter/controller:v1.0.8",
                Some(Version(1, 0, 8)),
            ),
            (
                "registry.local:5000/karpenter/controller:0.37.7",
                Some(Version(0, 37, 7)),
            ),
            ("registry.local:5000/karpenter/controller", None),
            ("public.ecr.aws/karpenter/controller@sha256:0c1d", None),
            ("public.ecr.aws/karpenter/controller:latest", None),
            ("", None),
        ] {
            assert_eq!(image_version(image), version, "{image}");
        }
    }

    /// An image named by its digest alone names no version: the chart's labels do, the
    /// Deployment's before the ServiceAccount's; what is given wins over all of them.
    #[test]
    fn a_digest_alone_takes_the_version_from_the_charts_labels() {
        let labelled = |name: &str, labels: serde_json::Value| {
            let mut obs = Observations::default();
            crate::signal::Scanner::new().unwrap().read_objects(
                "cluster",
                [
                    serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": name, "namespace": "kube-system", "labels": labels,
                        "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/K"}}}),
                ],
                &mut obs,
            );
            obs
        };
        let chart = serde_json::json!({"helm.sh/chart": "karpenter-1.14.3",
            "app.kubernetes.io/name": "karpenter", "app.kubernetes.io/version": "1.14.3"});
        let digest = read(&container(
            "public.ecr.aws/karpenter/controller@sha256:0c1d",
            &[],
            &[],
        ));
        let obs = labelled("karpenter", chart.clone());
        assert_eq!(
            version(&Given::default(), &digest, &obs),
            (Version(1, 14, 3), VersionFrom::ServiceAccountLabel)
        );
        let deployment = Running {
            chart_version: Some(Version(1, 12, 0)),
            ..digest.clone()
        };
        assert_eq!(
            version(&Given::default(), &deployment, &obs),
            (Version(1, 12, 0), VersionFrom::DeploymentLabel)
        );
        let tagged = read(&container("k/controller:1.8.2", &[], &[]));
        assert_eq!(
            version(&Given::default(), &tagged, &obs),
            (Version(1, 8, 2), VersionFrom::ImageTag)
        );
        let given = Given {
            version: Some(Version(1, 0, 8)),
            ..Given::default()
        };
        assert_eq!(
            version(&given, &deployment, &obs),
            (Version(1, 0, 8), VersionFrom::Given)
        );
        // The chart's version label only: the version in `helm.sh/chart`.
        let obs = labelled(
            "karpenter",
            serde_json::json!({"helm.sh/chart": "karpenter-1.3.3"}),
        );
        assert_eq!(
            version(&Given::default(), &digest, &obs).0,
            Version(1, 3, 3)
        );
        // Another chart's version is not Karpenter's.
        for labels in [
            serde_json::json!({"helm.sh/chart": "my-platform-2.4.0", "app.kubernetes.io/version": "2.4.0"}),
            serde_json::json!({"app.kubernetes.io/version": "1.15.0"}),
        ] {
            let obs = labelled("karpenter", labels);
            assert_eq!(
                version(&Given::default(), &digest, &obs),
                (NEWEST, VersionFrom::Newest)
            );
        }
    }

    /// The values the Karpenter chart v1.15.0 writes into the Deployment's env.
    #[test]
    fn the_charts_env_gives_the_settings() {
        let running = read(&container(
            "public.ecr.aws/karpenter/controller:1.15.0",
            &[
                ("KUBERNETES_MIN_VERSION", "1.19.0-0"),
                (
                    "FEATURE_GATES",
                    "ReservedCapacity=true,SpotToSpotConsolidation=false,NodeRepair=false",
                ),
                ("CLUSTER_NAME", "demo"),
                ("CLUSTER_ENDPOINT", ""),
                ("INTERRUPTION_QUEUE", "demo"),
                ("AWS_FEATURE_GATES", "RebootForRepair=true"),
            ],
            &[],
        ));
        assert_eq!(
            running,
            Running {
                version: Some(Version(1, 15, 0)),
                chart_version: None,
                region: None,
                cluster_name: Some("demo".into()),
                cluster_endpoint: None,
                interruption_queue: Some("demo".into()),
                isolated_vpc: None,
                disable_dry_run: None,
                feature_gates: vec![
                    "ReservedCapacity=true".into(),
                    "SpotToSpotConsolidation=false".into(),
                    "NodeRepair=false".into(),
                    "RebootForRepair=true".into()
                ],
            }
        );
    }

    #[test]
    fn a_flag_wins_over_the_env_and_the_last_word_wins() {
        let running = read(&container(
            "k:1.0.0",
            &[
                ("CLUSTER_NAME", "from-env"),
                ("ISOLATED_VPC", "false"),
                ("DISABLE_DRY_RUN", "yes"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_REGION", "cn-north-1"),
                ("AWS_FEATURE_GATES", "RebootForRepair=true,Broken=maybe"),
            ],
            &[
                "--cluster-name=first",
                "--cluster-name",
                "from-flag",
                "--isolated-vpc",
                "--interruption-queue-typo=q",
                "--aws-feature-gates=RebootForRepair=true,RebootForRepair=false",
            ],
        ));
        assert_eq!(running.cluster_name.as_deref(), Some("from-flag"));
        assert_eq!(running.isolated_vpc, Some(true));
        // Not a boolean Go parses: Karpenter would not start; not known here.
        assert_eq!(running.disable_dry_run, None);
        assert_eq!(running.interruption_queue, None);
        assert_eq!(running.region.as_deref(), Some("cn-north-1"));
        assert_eq!(running.feature_gates, ["RebootForRepair=false"]);
    }

    #[test]
    fn a_boolean_flag_alone_is_true() {
        let running = read(&container(
            "k:1.0.0",
            &[("ISOLATED_VPC", "false")],
            &[
                "-isolated-vpc",
                "false",
                "--disable-dry-run=false",
                "--cluster-name",
            ],
        ));
        // A boolean flag takes no next word (Go's flag); a value flag at the end has none.
        assert_eq!(running.isolated_vpc, Some(true));
        assert_eq!(running.disable_dry_run, Some(false));
        assert_eq!(running.cluster_name, None);
    }
}
