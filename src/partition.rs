//! AWS partitions: ids, DNS suffixes, regions, and the service principal names each partition
//! uses. China's are irregular (EC2 is `ec2.amazonaws.com.cn`), so they come from a table.

/// One AWS partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub id: &'static str,
    pub name: &'static str,
    pub dns_suffix: &'static str,
    /// Region names of this partition start with one of these.
    region_prefixes: &'static [&'static str],
    /// Services whose principal is `<service>.<dns_suffix>` here; all others use
    /// `<service>.amazonaws.com`.
    suffixed_principals: &'static [&'static str],
}

/// The partitions, the standard one first.
pub const PARTITIONS: [Partition; 7] = [
    Partition {
        id: "aws",
        name: "AWS Standard",
        dns_suffix: "amazonaws.com",
        region_prefixes: &[],
        suffixed_principals: &[],
    },
    Partition {
        id: "aws-cn",
        name: "AWS China",
        dns_suffix: "amazonaws.com.cn",
        region_prefixes: &["cn-"],
        suffixed_principals: CHINA_SUFFIXED,
    },
    Partition {
        id: "aws-us-gov",
        name: "AWS GovCloud (US)",
        dns_suffix: "amazonaws.com",
        region_prefixes: &["us-gov-"],
        suffixed_principals: &[],
    },
    Partition {
        id: "aws-iso",
        name: "AWS ISO (US)",
        dns_suffix: "c2s.ic.gov",
        region_prefixes: &["us-iso-"],
        suffixed_principals: &[],
    },
    Partition {
        id: "aws-iso-b",
        name: "AWS ISOB (US)",
        dns_suffix: "sc2s.sgov.gov",
        region_prefixes: &["us-isob-"],
        suffixed_principals: &[],
    },
    Partition {
        id: "aws-iso-e",
        name: "AWS ISOE (Europe)",
        dns_suffix: "cloud.adc-e.uk",
        region_prefixes: &["eu-isoe-"],
        suffixed_principals: &[],
    },
    Partition {
        id: "aws-iso-f",
        name: "AWS ISOF",
        dns_suffix: "csp.hci.ic.gov",
        region_prefixes: &["us-isof-"],
        suffixed_principals: &[],
    },
];

/// Services whose principal in aws-cn carries the `.amazonaws.com.cn` suffix; sources in
/// tests/fixtures/partitions/NOTES.md (AWS China publishes no list).
const CHINA_SUFFIXED: &[&str] = &["ec2", "application-autoscaling", "elasticmapreduce"];

impl Partition {
    /// The partition with this id (`aws`, `aws-cn`, …).
    pub fn by_id(id: &str) -> Option<&'static Partition> {
        PARTITIONS.iter().find(|p| p.id == id)
    }

    /// The partition a region belongs to; unknown regions are taken as standard AWS.
    pub fn of_region(region: &str) -> &'static Partition {
        PARTITIONS
            .iter()
            .find(|p| {
                p.region_prefixes
                    .iter()
                    .any(|prefix| region.starts_with(prefix))
            })
            .unwrap_or(&PARTITIONS[0])
    }

    /// The region of an EKS cluster's API endpoint
    /// (`https://0A1B….gr7.cn-northwest-1.eks.amazonaws.com.cn`), where the URL is one.
    pub fn region_of_eks_endpoint(url: &str) -> Option<String> {
        let host = url.split("://").last()?.split(['/', ':']).next()?;
        let labels: Vec<&str> = host.split('.').collect();
        let eks = labels.iter().position(|l| *l == "eks")?;
        let region = *labels.get(eks.checked_sub(1)?)?;
        let suffix = labels[eks + 1..].join(".");
        let known = PARTITIONS.iter().any(|p| p.dns_suffix == suffix);
        let shaped = region.contains('-')
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        (known && shaped).then(|| region.to_string())
    }

    /// The principal a service uses in this partition, e.g. `ec2.amazonaws.com.cn` in aws-cn.
    pub fn service_principal(&self, service: &str) -> String {
        if self.suffixed_principals.contains(&service) {
            format!("{service}.{}", self.dns_suffix)
        } else {
            format!("{service}.amazonaws.com")
        }
    }

    /// Every name under which IAM may see a service in this partition. For EC2 in aws-cn this is
    /// both `ec2.amazonaws.com.cn` (CreateFleet, RunInstances) and `ec2.amazonaws.com`
    /// (AddRoleToInstanceProfile checks PassRole with it: karpenter-provider-aws #6843).
    pub fn service_principals(&self, service: &str) -> Vec<String> {
        let mut names = vec![self.service_principal(service)];
        let global = format!("{service}.amazonaws.com");
        if !names.contains(&global) {
            names.push(global);
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eks_endpoint_names_its_region() {
        for (url, region) in [
            (
                "https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.gr7.us-west-2.eks.amazonaws.com",
                Some("us-west-2"),
            ),
            (
                "https://0A1B2C3D4E5F60718293A4B5C6D7E8F9.yl4.cn-northwest-1.eks.amazonaws.com.cn:443/",
                Some("cn-northwest-1"),
            ),
            (
                "https://ABC.sk1.us-gov-west-1.eks.amazonaws.com",
                Some("us-gov-west-1"),
            ),
            ("https://127.0.0.1:6443", None),
            ("https://eks.amazonaws.com", None),
            ("https://x.us-west-2.eks.example.com", None),
            ("https://x.US_WEST.eks.amazonaws.com", None),
            ("", None),
        ] {
            assert_eq!(
                Partition::region_of_eks_endpoint(url).as_deref(),
                region,
                "{url}"
            );
        }
    }

    #[test]
    fn regions_map_to_their_partitions() {
        assert_eq!(Partition::of_region("cn-northwest-1").id, "aws-cn");
        assert_eq!(
            Partition::of_region("cn-north-1").dns_suffix,
            "amazonaws.com.cn"
        );
        assert_eq!(Partition::of_region("us-gov-west-1").id, "aws-us-gov");
        assert_eq!(Partition::of_region("us-isob-east-1").id, "aws-iso-b");
        assert_eq!(Partition::of_region("us-iso-east-1").id, "aws-iso");
        assert_eq!(Partition::of_region("eu-west-1").id, "aws");
        assert_eq!(
            Partition::by_id("aws-iso").unwrap().dns_suffix,
            "c2s.ic.gov"
        );
        assert!(Partition::by_id("aws-mars").is_none());
    }

    #[test]
    fn china_service_principals_are_irregular() {
        let cn = Partition::by_id("aws-cn").unwrap();
        assert_eq!(cn.service_principal("ec2"), "ec2.amazonaws.com.cn");
        assert_eq!(cn.service_principal("rds"), "rds.amazonaws.com");
        assert_eq!(
            cn.service_principals("ec2"),
            ["ec2.amazonaws.com.cn", "ec2.amazonaws.com"]
        );
        assert_eq!(cn.service_principals("eks"), ["eks.amazonaws.com"]);
        let aws = Partition::by_id("aws").unwrap();
        assert_eq!(aws.service_principals("ec2"), ["ec2.amazonaws.com"]);
    }
}
