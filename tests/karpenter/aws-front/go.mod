module karpenter-doctor/tests/karpenter/aws-front

go 1.22
