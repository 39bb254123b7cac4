package kombu_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/stretchr/testify/require"

	kombu "github.com/watermill-kombu/watermill-kombu"
	"github.com/watermill-kombu/watermill-kombu/internal/testenv"
)

// TestSNSFanoutTopicDeletedOnResend: SNS takes nine entries of a PublishBatch and fails the
// last on its side; the topic is deleted before that entry is sent again. Once the topic is
// created again, only that entry is sent once more, not the nine already delivered: the
// queue gets every message once.
func TestSNSFanoutTopicDeletedOnResend(t *testing.T) {
	endpoint := testenv.MotoEndpoint(t)
	exchange := testenv.UniqueName("fanout-resend")
	q := testenv.UniqueName("fanout-resend-q")
	snsClient := testenv.SNSClient(t, endpoint)
	var batches, sends atomic.Int32
	proxy := sqsProxy(t, endpoint, func(_ string, body []byte, w http.ResponseWriter) bool {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return false
		}
		if form.Get("Action") == "Publish" {
			sends.Add(1)
		}
		if form.Get("Action") != "PublishBatch" {
			return false
		}
		switch batches.Add(1) {
		case 1:
			// Publish all entries but the last one through SNS itself, and answer that the last
			// one failed on SNS's side.
			publishAllButLast(t, snsClient, form, w)
			return true
		case 2:
			_, err := snsClient.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: aws.String(form.Get("TopicArn"))})
			require.NoError(t, err)
		}
		return false
	})
	cfg := motoConfig(proxy, map[string]kombu.Exchange{exchange: fanoutExchange(q)})
	pub, err := kombu.NewPublisher(kombu.PublisherConfig{Config: cfg}, nil)
	require.NoError(t, err)
	defer pub.Close()
	msgs, want := numberedMessages(10)
	require.NoError(t, pub.Publish(exchange, msgs...))
	require.GreaterOrEqual(t, batches.Load()+sends.Load(), int32(3), "the refused entry is sent again")

	sub, err := kombu.NewSubscriber(quickSubscriberConfig(testConfig(endpoint)), nil)
	require.NoError(t, err)
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), q)
	require.NoError(t, err)
	got := receiveAcked(t, ch, 10, 30*time.Second)
	select {
	case m := <-ch:
		t.Fatalf("message %q delivered twice", m.Payload)
	case <-time.After(3 * time.Second):
	}
	require.ElementsMatch(t, want, got)
}

// publishAllButLast publishes the entries of a PublishBatch request (in its query-protocol
// form) but the last one, and writes SNS's answer for the whole batch: the last entry failed
// with an InternalError, not the sender's fault.
func publishAllButLast(t *testing.T, client *sns.Client, form url.Values, w http.ResponseWriter) {
	var entries []snstypes.PublishBatchRequestEntry
	for i := 1; form.Has("PublishBatchRequestEntries.member." + strconv.Itoa(i) + ".Id"); i++ {
		prefix := "PublishBatchRequestEntries.member." + strconv.Itoa(i) + "."
		entries = append(entries, snstypes.PublishBatchRequestEntry{Id: aws.String(form.Get(prefix + "Id")), Message: aws.String(form.Get(prefix + "Message"))})
	}
	require.Greater(t, len(entries), 1)
	last := entries[len(entries)-1]
	out, err := client.PublishBatch(context.Background(), &sns.PublishBatchInput{TopicArn: aws.String(form.Get("TopicArn")), PublishBatchRequestEntries: entries[:len(entries)-1]})
	require.NoError(t, err)
	require.Empty(t, out.Failed)
	var b strings.Builder
	b.WriteString(`<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishBatchResult><Successful>`)
	for _, s := range out.Successful {
		fmt.Fprintf(&b, "<member><Id>%s</Id><MessageId>%s</MessageId></member>", aws.ToString(s.Id), aws.ToString(s.MessageId))
	}
	fmt.Fprintf(&b, "</Successful><Failed><member><Id>%s</Id><Code>InternalError</Code><Message>try again</Message><SenderFault>false</SenderFault></member></Failed>", aws.ToString(last.Id))
	b.WriteString(`</PublishBatchResult><ResponseMetadata><RequestId>resend-test</RequestId></ResponseMetadata></PublishBatchResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write([]byte(b.String()))
}
