mod proxy;
mod template_iam;
