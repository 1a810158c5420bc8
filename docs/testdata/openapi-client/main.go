// Command openapi-client drives one checkout through the Go client that
// oapi-codegen generates from docs/openapi.yaml into ./flashclient (see
// docs/openapi_test.go and `make openapi-client`): it compiles only if the
// generated client has the operations and typed answers the contract
// names, and, given a server's base URL, it checks that they decode what
// the server sends. Not part of the flashsale module (it lives in testdata).
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"flashclientcheck/flashclient"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapi-client http://host:port")
		os.Exit(2)
	}
	if err := checkout(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapi-client:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

// checkout lists products, holds one unit of the first, orders it, pays
// it, and reads the order back as paid.
func checkout(base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := flashclient.NewClientWithResponses(base)
	if err != nil {
		return err
	}
	list, err := c.ListProductsWithResponse(ctx)
	if err != nil {
		return err
	}
	if list.JSON200 == nil || len(list.JSON200.Products) == 0 {
		return fmt.Errorf("GET /api/products: %d %s", list.StatusCode(), list.Body)
	}
	product := list.JSON200.Products[0]
	key := "openapi-client-hold"
	hold, err := c.CreateHoldWithResponse(ctx, &flashclient.CreateHoldParams{IdempotencyKey: &key},
		flashclient.HoldRequest{ProductId: product.Id, Qty: 1})
	if err != nil {
		return err
	}
	if hold.JSON201 == nil || hold.JSON201.ExpiresAt.IsZero() {
		return fmt.Errorf("POST /api/holds: %d %s", hold.StatusCode(), hold.Body)
	}
	got, err := c.GetHoldWithResponse(ctx, hold.JSON201.HoldToken)
	if err != nil {
		return err
	}
	if got.JSON200 == nil || got.JSON200.Status != flashclient.Active {
		return fmt.Errorf("GET /api/holds/{token}: %d %s", got.StatusCode(), got.Body)
	}
	order, err := c.CreateOrderWithResponse(ctx, flashclient.OrderRequest{HoldToken: hold.JSON201.HoldToken})
	if err != nil {
		return err
	}
	if order.JSON201 == nil || order.JSON201.Status != flashclient.OrderStatusPending {
		return fmt.Errorf("POST /api/orders: %d %s", order.StatusCode(), order.Body)
	}
	paid, err := c.PaymentWebhookWithResponse(ctx, &flashclient.PaymentWebhookParams{IdempotencyKey: "openapi-client-evt"},
		flashclient.PaymentEvent{Status: flashclient.Success, OrderId: order.JSON201.OrderId})
	if err != nil {
		return err
	}
	if paid.JSON200 == nil || !paid.JSON200.Applied || paid.JSON200.Status != flashclient.PaymentResultStatusPaid {
		return fmt.Errorf("POST /api/payments/webhook: %d %s", paid.StatusCode(), paid.Body)
	}
	again, err := c.GetOrderWithResponse(ctx, order.JSON201.OrderId)
	if err != nil {
		return err
	}
	if again.JSON200 == nil || again.JSON200.Status != flashclient.OrderStatusPaid {
		return fmt.Errorf("GET /api/orders/{id}: %d %s", again.StatusCode(), again.Body)
	}
	missing, err := c.GetProductWithResponse(ctx, 1<<40)
	if err != nil {
		return err
	}
	if missing.JSON404 == nil || missing.JSON404.Error != "product_not_found" {
		return fmt.Errorf("GET /api/products/{id} of no product: %d %s", missing.StatusCode(), missing.Body)
	}
	return nil
}
