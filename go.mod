module github.com/watermill-kombu/watermill-kombu

go 1.24.0
