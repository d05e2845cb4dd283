//! `webhooks --help` speaks to the person running it.

use crate::support::run;

#[tokio::test]
async fn top_level_help_describes_the_tool_not_its_source() {
    for flag in ["--help", "-h"] {
        let help = run(&[flag.to_owned()], None).await;
        help.ok();
        let text = &help.stdout;
        assert!(
            text.starts_with("The webhook service of the CRM back office"),
            "{flag}: {text}"
        );
        // Rustdoc's vocabulary, meant for developers, stays out.
        for developer_words in ["[`", "embedders", "flattens", "crate::"] {
            assert!(
                !text.contains(developer_words),
                "{flag} shows `{developer_words}`: {text}"
            );
        }
    }
}
