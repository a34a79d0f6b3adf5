mod template_iam;
