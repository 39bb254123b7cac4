// Package redisbackend is Celery's Redis result backend for the Go worker of package celery:
// a task's result is stored and published where Celery's AsyncResult.get reads it. It is the
// only package of this module that imports go-redis.
package redisbackend
