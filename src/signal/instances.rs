//! `aws ec2 describe-instances` output: each instance's state reason is recognised (the only
//! place a KMS launch failure is written down) and its Karpenter tags link it to its NodeClaim.

use super::kube::str_at;
use super::sink::{Context, Sink};
use super::{InstanceInfo, Source};
use serde_json::Value;

/// A reservation: `{"Instances": [...]}`.
pub(crate) fn reservation(value: &Value, line: usize, sink: &mut Sink<'_>) {
    if let Some(Value::Array(instances)) = value.get("Instances") {
        for item in instances {
            instance(item, line, sink);
        }
    }
}

/// One instance object.
pub(crate) fn instance(value: &Value, line: usize, sink: &mut Sink<'_>) {
    let Some(instance_id) = str_at(value, &["InstanceId"]) else {
        return;
    };
    let tag = |key: &str| -> Option<String> {
        value
            .get("Tags")?
            .as_array()?
            .iter()
            .find(|t| str_at(t, &["Key"]) == Some(key))
            .and_then(|t| str_at(t, &["Value"]))
            .map(String::from)
    };
    let owned = |path: &[&str]| str_at(value, path).map(String::from);
    let info = InstanceInfo {
        instance_id: instance_id.to_string(),
        image_id: owned(&["ImageId"]),
        state: owned(&["State", "Name"]),
        state_reason_code: owned(&["StateReason", "Code"]),
        state_reason_message: owned(&["StateReason", "Message"]),
        node_claim: tag("karpenter.sh/nodeclaim"),
        node_pool: tag("karpenter.sh/nodepool").or_else(|| tag("karpenter.sh/provisioner-name")),
        node_class: tag("karpenter.k8s.aws/ec2nodeclass"),
        region: str_at(value, &["Placement", "AvailabilityZone"]).and_then(region_of_zone),
        launch_time: str_at(value, &["LaunchTime"]).and_then(super::time::normalize),
        capacity_type: owned(&["InstanceLifecycle"]).unwrap_or_else(|| "on-demand".into()),
    };
    // The message repeats the code ("Client.X: text"); without one, the code alone.
    let reason = info
        .state_reason_message
        .as_deref()
        .or(info.state_reason_code.as_deref());
    if let Some(reason) = reason {
        let context = Context {
            time: info.launch_time.clone(),
            node_claim: info.node_claim.clone(),
            node_pool: info.node_pool.clone(),
            node_class: info.node_class.clone(),
            instance_id: Some(info.instance_id.clone()),
            ..Context::new(Source::Instance, line)
        };
        sink.recognise(&context, reason);
    }
    sink.instance(info);
}

/// The region of an availability zone: `us-east-1a` → `us-east-1`, also for Local Zones
/// (`us-west-2-lax-1a`) and Wavelength zones (`us-east-1-wl1-bos-wlz-1`).
pub(crate) fn region_of_zone(zone: &str) -> Option<String> {
    // A region is letters-and-dashes, a dash, then digits: the first `-<digits>` ends it.
    let bytes = zone.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + 1 + digits;
            let prefix_ok = zone[..i]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-')
                && i > 0;
            return prefix_ok.then(|| zone[..end].to_string());
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_zones() {
        for (zone, region) in [
            ("us-east-1a", Some("us-east-1")),
            ("cn-northwest-1c", Some("cn-northwest-1")),
            ("us-gov-west-1b", Some("us-gov-west-1")),
            ("us-west-2-lax-1a", Some("us-west-2")),
            ("us-east-1-wl1-bos-wlz-1", Some("us-east-1")),
            ("ap-southeast-10a", Some("ap-southeast-10")),
            ("", None),
            ("-1a", None),
            ("use1-az1", None),
        ] {
            assert_eq!(region_of_zone(zone).as_deref(), region, "{zone}");
        }
    }
}
