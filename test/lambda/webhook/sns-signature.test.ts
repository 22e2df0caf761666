import { canonicalString, checkSnsUrl, SnsVerificationError } from '../../../lambda/webhook/sns-signature';

describe('signing certificate URL', () => {
  test.each([
    'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem',
    'https://sns.eu-central-1.amazonaws.com/SimpleNotificationService-abc.pem',
    'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem',
    'https://sns.cn-northwest-1.amazonaws.com.cn/SimpleNotificationService-abc.pem',
    'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
    'https://sns.ap-southeast-4.amazonaws.com/SimpleNotificationService-abc.pem',
  ])('accepts %s', (url) => {
    expect(checkSnsUrl(url, 'SigningCertURL').hostname).toMatch(/^sns\./);
  });

  test.each([
    ['http', 'http://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem'],
    ['a foreign host', 'https://evil.example/SimpleNotificationService-abc.pem'],
    ['a suffix attack', 'https://sns.us-east-1.amazonaws.com.evil.example/x.pem'],
    ['a non-SNS AWS host', 'https://s3.us-east-1.amazonaws.com/x.pem'],
    ['a China region on the commercial domain', 'https://sns.cn-north-1.amazonaws.com/x.pem'],
    ['a commercial region on the China domain', 'https://sns.us-east-1.amazonaws.com.cn/x.pem'],
    ['a port', 'https://sns.us-east-1.amazonaws.com:8443/x.pem'],
    ['credentials', 'https://user:pw@sns.us-east-1.amazonaws.com/x.pem'],
    ['a non-.pem path', 'https://sns.us-east-1.amazonaws.com/x.crt'],
    ['a query', 'https://sns.us-east-1.amazonaws.com/x.pem?redirect=evil'],
    ['not a URL', 'sns.us-east-1.amazonaws.com/x.pem'],
  ])('rejects %s', (_what, url) => {
    expect(() => checkSnsUrl(url, 'SigningCertURL')).toThrow(SnsVerificationError);
  });

  test('a SubscribeURL may carry a query (the confirmation token) but must be on an SNS host', () => {
    expect(checkSnsUrl('https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=t', 'SubscribeURL').search).toContain('Token=t');
    expect(() => checkSnsUrl('https://evil.example/?Action=ConfirmSubscription', 'SubscribeURL')).toThrow(SnsVerificationError);
  });
});

describe('canonical string', () => {
  const base = { Message: 'm', MessageId: 'id', Timestamp: 't', TopicArn: 'arn', Token: 'tok', SubscribeURL: 'https://x' };

  test('a Notification signs Message, MessageId, Subject, Timestamp, TopicArn, Type in that order', () => {
    expect(canonicalString({ ...base, Type: 'Notification', Subject: 's' })).toBe('Message\nm\nMessageId\nid\nSubject\ns\nTimestamp\nt\nTopicArn\narn\nType\nNotification\n');
  });

  test('a SubscriptionConfirmation signs SubscribeURL and Token instead of Subject', () => {
    expect(canonicalString({ ...base, Type: 'SubscriptionConfirmation', Subject: 'ignored' })).toBe(
      'Message\nm\nMessageId\nid\nSubscribeURL\nhttps://x\nTimestamp\nt\nToken\ntok\nTopicArn\narn\nType\nSubscriptionConfirmation\n',
    );
  });

  test('a missing field of the type is an error, not an empty line', () => {
    const { Token: _t, ...noToken } = base;
    expect(() => canonicalString({ ...noToken, Type: 'UnsubscribeConfirmation' })).toThrow(/field Token is missing/);
  });
});
