use artifact_render::artifact::{EmailArtifact, SmsArtifact};
use artifact_render::request::{CompanyId, MessageId, ProfileId, RecipientId, RequestId};
use artifact_render::sms::SmsEncoding;
use artifact_render::template::Channel;

use super::*;

fn email(subject: &str, html: &str) -> Artifact {
    Artifact {
        request_id: RequestId::parse("req-1").unwrap(),
        company_id: CompanyId::parse("acme").unwrap(),
        message_id: MessageId::parse("m1").unwrap(),
        recipient_id: RecipientId::parse("r1").unwrap(),
        profile_id: ProfileId::parse("p1").unwrap(),
        channel: Channel::Email,
        outcome: Outcome::Email(EmailArtifact {
            subject: subject.into(),
            from: "Shop <news@shop.example>".into(),
            reply_to: None,
            headers: [("List-Unsubscribe".to_owned(), "<https://t/u/1>".to_owned())].into(),
            html: html.into(),
            text: "Hi".into(),
            links: Vec::new(),
            warnings: Vec::new(),
        }),
    }
}

#[test]
fn identical_artifacts_have_no_diff() {
    let a = email("Hi Ada", "<p>Hi</p>");
    assert!(compare(&a, &a.clone(), None, &[]).is_empty());
}

#[test]
fn a_subject_change_is_content_and_names_its_part() {
    let diffs = compare(
        &email("Hi Ada", "<p>Hi</p>"),
        &email("Hello Ada", "<p>Hi</p>"),
        None,
        &[],
    );
    assert_eq!(diffs.len(), 1);
    assert_eq!(
        (diffs[0].part, diffs[0].kind, diffs[0].noise),
        ("subject", DiffKind::Content, false)
    );
    assert_eq!(
        (diffs[0].production.as_str(), diffs[0].canary.as_str()),
        ("Hi Ada", "Hello Ada")
    );
}

#[test]
fn whitespace_between_tags_and_words_is_only_whitespace() {
    let diffs = compare(
        &email("Hi", "<table><tr><td>Hi  Ada</td></tr></table>"),
        &email(
            "Hi",
            "<table>\n  <tr>\n    <td>Hi Ada</td>\n  </tr>\n</table>",
        ),
        None,
        &[],
    );
    assert_eq!(diffs.len(), 1);
    assert_eq!(
        (diffs[0].part, diffs[0].kind),
        ("html", DiffKind::Whitespace)
    );
    let diffs = compare(
        &email("Hi", "<p>Hi Ada</p>"),
        &email("Hi", "<p>Hi Adam</p>"),
        None,
        &[],
    );
    assert_eq!(diffs[0].kind, DiffKind::Content);
    let diffs = compare(
        &email("Hi", "<p class=a>x</p>"),
        &email("Hi", "<p  class=a>x</p>"),
        None,
        &[],
    );
    assert_eq!(
        diffs[0].kind,
        DiffKind::Content,
        "inside a tag, spacing is the tag's bytes"
    );
}

#[test]
fn a_part_that_also_differs_in_the_control_copy_is_noise() {
    let production = email("Hi Ada", "<p>1</p>");
    let canary = email("Hi Ada!", "<p>2</p>");
    let control = email("Hi Ada", "<p>3</p>");
    let diffs = compare(&production, &canary, Some(&control), &[]);
    let noise: Vec<(&str, bool)> = diffs.iter().map(|d| (d.part, d.noise)).collect();
    assert_eq!(noise, [("subject", false), ("html", true)]);
}

#[test]
fn ignored_parts_and_headers_are_left_out() {
    let mut canary = email("Hello", "<p>Hi</p>");
    if let Outcome::Email(e) = &mut canary.outcome {
        e.headers.insert("X-Build".into(), "candidate".into());
    }
    let production = email("Hi", "<p>Hi</p>");
    let parts = |rules: &[&str]| -> Vec<&'static str> {
        let rules: Vec<Ignore> = rules.iter().map(|r| Ignore::parse(r).unwrap()).collect();
        compare(&production, &canary, None, &rules)
            .iter()
            .map(|d| d.part)
            .collect()
    };
    assert_eq!(parts(&[]), ["subject", "headers"]);
    assert_eq!(parts(&["subject", "header:x-build"]), Vec::<&str>::new());
    let error = Ignore::parse("body").unwrap_err();
    assert!(error.contains("give a part (outcome, subject"), "{error}");
}

#[test]
fn an_sms_compares_body_and_layout() {
    let sms = |body: &str, segments| Artifact {
        channel: Channel::Sms,
        outcome: Outcome::Sms(SmsArtifact {
            body: body.into(),
            encoding: SmsEncoding::Gsm7,
            segments,
            ucs2_trigger: None,
        }),
        ..email("", "")
    };
    let parts: Vec<&str> = compare(&sms("Hi", 1), &sms("Hi!", 2), None, &[])
        .iter()
        .map(|d| d.part)
        .collect();
    assert_eq!(parts, ["sms", "sms_layout"]);
}
