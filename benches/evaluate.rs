//! Benchmark: IAM evaluations per second on one core for Karpenter's real controller policy
//! set (CloudFormation v1.9, aws-cn) plus a permissions boundary, over a realistic request mix.

use karpenter_doctor::policy::{Context, Decision, Policy, PolicySet, Request};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ACCOUNT: &str = "111122223333";

fn load(path: &str) -> Policy {
    let text = std::fs::read_to_string(path).expect(path);
    Policy::parse(path, &text).expect(path)
}

fn request(action: &str, resource: &str, context: &[(&str, &str)]) -> Request {
    let mut ctx = Context::default();
    for (k, v) in context {
        ctx.insert(k, *v);
    }
    let principal =
        format!("arn:aws-cn:sts::{ACCOUNT}:assumed-role/KarpenterController-demo/1700000000");
    Request::new(&principal, action, resource).with_context(ctx)
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/policies");
    let set = PolicySet {
        identity: [
            "karpenter-v1-node-lifecycle",
            "karpenter-v1-iam-integration",
            "karpenter-v1-eks-integration",
            "karpenter-v1-interruption",
            "karpenter-v1-resource-discovery",
        ]
        .iter()
        .map(|n| load(&format!("{dir}/{n}.aws-cn.json")))
        .collect(),
        boundary: Some(load(&format!("{dir}/boundary-ec2-iam.json"))),
        scps: None,
        resource: None,
    };
    let node_role = format!("arn:aws-cn:iam::{ACCOUNT}:role/KarpenterNodeRole-demo");
    let region = "cn-northwest-1";
    let fleet = format!("arn:aws-cn:ec2:{region}:{ACCOUNT}:fleet/*");
    let instance = format!("arn:aws-cn:ec2:{region}:{ACCOUNT}:instance/i-0123456789abcdef0");
    let tags = [
        ("aws:RequestTag/kubernetes.io/cluster/demo", "owned"),
        ("aws:RequestTag/eks:eks-cluster-name", "demo"),
        ("aws:RequestTag/topology.kubernetes.io/region", region),
        ("aws:RequestTag/karpenter.sh/nodepool", "default"),
    ];
    let requests = vec![
        request(
            "iam:PassRole",
            &node_role,
            &[("iam:PassedToService", "ec2.amazonaws.com.cn")],
        ),
        request(
            "iam:PassRole",
            &node_role,
            &[("iam:PassedToService", "ec2.amazonaws.com")],
        ),
        request("ec2:CreateFleet", &fleet, &tags),
        request("ec2:RunInstances", &instance, &tags),
        request(
            "ec2:CreateTags",
            &instance,
            &[("ec2:CreateAction", "RunInstances")],
        ),
        request(
            "ec2:TerminateInstances",
            &instance,
            &[
                ("aws:ResourceTag/kubernetes.io/cluster/demo", "owned"),
                ("aws:ResourceTag/karpenter.sh/nodepool", "default"),
            ],
        ),
        request(
            "ec2:DescribeImages",
            "*",
            &[("aws:RequestedRegion", region)],
        ),
        request(
            "ssm:GetParameter",
            &format!(
                "arn:aws-cn:ssm:{region}::parameter/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/image_id"
            ),
            &[],
        ),
        request(
            "iam:CreateUser",
            &format!("arn:aws-cn:iam::{ACCOUNT}:user/x"),
            &[],
        ),
        request("s3:GetObject", "arn:aws-cn:s3:::bucket/key", &[]),
    ];
    let decisions: Vec<Decision> = requests.iter().map(|r| set.decide(r)).collect();
    // A set that allows nothing or everything is no benchmark: check the mix first.
    assert!(decisions.contains(&Decision::Allowed) && decisions.contains(&Decision::ImplicitDeny));
    for (r, d) in requests.iter().zip(&decisions) {
        assert_eq!(
            set.explain(r).decision,
            *d,
            "fast path and explanation disagree on {}",
            r.action
        );
    }

    let budget = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let start = Instant::now();
    let mut evaluations = 0u64;
    while start.elapsed() < budget {
        for _ in 0..1000 {
            for r in &requests {
                black_box(set.decide(black_box(r)));
            }
        }
        evaluations += 1000 * requests.len() as u64;
    }
    let per_second = evaluations as f64 / start.elapsed().as_secs_f64();
    let statements: usize = set
        .identity
        .iter()
        .map(|p| p.statements.len())
        .sum::<usize>()
        + set.boundary.as_ref().map_or(0, |b| b.statements.len());
    println!(
        "policy set: {} identity policies + boundary, {statements} statements; {} requests in the mix",
        set.identity.len(),
        requests.len()
    );
    println!("decide: {per_second:.0} evaluations/s on one core (target >= 1000000)");

    let start = Instant::now();
    let mut explained = 0u64;
    while start.elapsed() < budget / 3 {
        for r in &requests {
            black_box(set.explain(black_box(r)));
        }
        explained += requests.len() as u64;
    }
    println!(
        "explain: {:.0} explanations/s on one core",
        explained as f64 / start.elapsed().as_secs_f64()
    );
}
